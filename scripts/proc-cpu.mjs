// CPU times of a process as Linux's /proc reports them, for scripts/test.mjs and the per-file probe
// it preloads into each test process (scripts/file-cpu.mjs).
import { readFileSync } from 'node:fs';

/** /proc's unit: USER_HZ, which Linux reports to user space as 100 ticks a second on every architecture. */
const TICKS_PER_SECOND = 100;

/**
 * A process's command name and its CPU seconds from /proc/PID/stat: its own user and system time,
 * and that of the children it has waited for (`cutime`, `cstime`); null when it cannot be read
 * (not Linux, or the process has exited).
 */
export function procCpu(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The fields after the command name (which may hold spaces), from field 3 (state) on.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [user, system, childUser, childSystem] = [11, 12, 13, 14].map((i) => Number(fields[i]) / TICKS_PER_SECOND);
  return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), user, system, childUser, childSystem };
}
