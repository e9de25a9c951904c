/**
 * CPU time of the PostgreSQL server on this machine, from /proc, so a benchmark with --pg can count
 * the database's share of the work beside its own process. Two parts:
 *   - the backends serving one database (the platform's pool, an autovacuum worker on it): their
 *     process title names the database (`postgres: 15/main: postgres <database> 127.0.0.1(…) idle`);
 *   - the server's background processes (WAL writer, checkpointer, background writer): they flush
 *     and write back what the backends logged, for every database of the server, so on a machine
 *     where others use the same server they also carry some of their work.
 * A backend that exits between two snapshots takes the CPU it used since the first with it: the
 * difference counts them (`lost`), so a figure that missed some says so.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface PostgresCpuSnapshot {
  /** CPU seconds per process ID. */
  backends: Map<number, number>;
  background: Map<number, number>;
}

export interface PostgresCpuUsage {
  /** CPU seconds the database's backends used between the snapshots. */
  backends: number;
  /** CPU seconds of the server's background processes between the snapshots. */
  background: number;
  /** Backends seen in the first snapshot and gone by the second (their last CPU is not counted). */
  lost: number;
}

const BACKGROUND = /^postgres: .*(walwriter|checkpointer|background writer)\s*$/;

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat (USER_HZ = 100); `self/task/<id>`: one thread of this process. */
export function processCpuSeconds(pid: number | string): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The CPU seconds so far of the backends of `database` and of the server's background processes. */
export function snapshotPostgresCpu(database: string): PostgresCpuSnapshot {
  const snapshot: PostgresCpuSnapshot = { backends: new Map(), background: new Map() };
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (!title.startsWith('postgres: ')) continue;
      if (title.split(' ').includes(database)) snapshot.backends.set(pid, processCpuSeconds(pid));
      else if (BACKGROUND.test(title)) snapshot.background.set(pid, processCpuSeconds(pid));
    } catch {
      // The process ended while we looked, or is not ours to read.
    }
  }
  return snapshot;
}

/** What was used between two snapshots; a backend that started in between counts from zero. */
export function postgresCpuBetween(before: PostgresCpuSnapshot, after: PostgresCpuSnapshot): PostgresCpuUsage {
  const sum = (a: Map<number, number>, b: Map<number, number>) => [...b].reduce((total, [pid, cpu]) => total + cpu - (a.get(pid) ?? 0), 0);
  return {
    backends: sum(before.backends, after.backends),
    background: sum(before.background, after.background),
    lost: [...before.backends.keys()].filter((pid) => !after.backends.has(pid)).length,
  };
}
