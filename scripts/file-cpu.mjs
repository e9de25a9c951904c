// Preloaded (--import) into each test file's process by scripts/test.mjs: at exit, appends one JSON
// line to $BULWARK_TEST_CPU_LOG with the file and the CPU seconds its process used, its own and that
// of the children it waited for (CLI commands, openssl, mosquitto_pub, Chromium). Nothing is written
// off Linux, or in a process that is not a test file's (the runner's own).
import { appendFileSync } from 'node:fs';
import { procCpu } from './proc-cpu.mjs';

const log = process.env.BULWARK_TEST_CPU_LOG;
const file = process.argv[1];
if (log && file && /\.test\.[jt]s$/.test(file)) {
  process.on('exit', () => {
    const cpu = procCpu('self');
    if (!cpu) return;
    appendFileSync(log, JSON.stringify({ file, own: cpu.user + cpu.system, children: cpu.childUser + cpu.childSystem }) + '\n');
  });
}
