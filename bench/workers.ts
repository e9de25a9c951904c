/**
 * Stored telemetry with one worker, then two (`bulwark serve --workers N`), on the same PostgreSQL
 * database, the same Redis and the same devices: N devices over mutual TLS keep a window of QoS 1
 * messages in flight (bench/support/mqtt-load.ts, its own process); every PUBACK means committed.
 *
 * The load generator runs on the same machine and takes its share of the same cores, so beside
 * each throughput it prints who used the CPU during the run (from /proc, over the load
 * generator's lifetime, connections included): the node's processes (primary and workers), the
 * load generator, PostgreSQL (this database's backends and the server's background writers) and
 * the whole machine, each as cores busy on average, and the node's CPU per stored message. On two
 * cores a ratio near 1 with the machine near 2 busy cores says the machine, not the node, is the
 * limit; with other work on the machine, msg/s follows the share of the cores the node got.
 *
 * With --rate R the load is an open loop instead: R QoS 1 messages a second offered across the
 * devices whatever the node answers (as bench:ingest's open loop), so "p50/p99 ms" are the
 * publish→PUBACK latency of a node that is not saturated, and "vs 1" compares what was
 * acknowledged (about R for both when neither falls behind).
 *
 *   npm run bench:workers -- [--devices 200] [--window 4] [--duration 8] [--workers 2] [--rate 0]
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../packages/server/src/ops/config.js';
import { openPlatform } from '../packages/server/src/platform.js';
import { DEFAULT_INIT, initialize } from '../packages/server/src/runner/init.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../packages/server/src/testing/devices.js';
import { ENGINES } from '../packages/server/src/testing/engines.js';
import { UNLIMITED_DEVICE_RATES } from '../packages/server/src/testing/mqtt.js';
import { REDIS_URL } from '../packages/server/src/testing/redis.js';
import { startServerProcess } from '../packages/server/src/testing/server-process.js';
import { machine, table } from './support/measure.js';
import type { LoadJob, LoadReport } from './support/mqtt-load.js';
import { processCpuSeconds, snapshotPostgresCpu, postgresCpuBetween } from './support/postgres-cpu.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    window: { type: 'string', default: '4' },
    duration: { type: 'string', default: '8' },
    workers: { type: 'string', default: '2' },
    rate: { type: 'string', default: '0' },
  },
});
const devicesWanted = Number(values.devices);
const window = Number(values.window);
const seconds = Number(values.duration);
const most = Number(values.workers);
const openLoopRate = Number(values.rate);
for (const [name, n] of Object.entries({ devices: devicesWanted, window, duration: seconds, workers: most })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
if (!Number.isInteger(openLoopRate) || openLoopRate < 0)
  throw new Error('--rate must be a whole number of messages per second (0: the closed loop, a window per device)');

const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
if (postgres.skip) throw new Error(`bench:workers needs PostgreSQL: ${postgres.skip}`);

/** The node's settings as BULWARK_* variables: the per-device limits and quotas out of the way. */
function nodeEnv(url: string): Record<string, string> {
  const env: Record<string, string> = {
    BULWARK_DATABASE_URL: url,
    BULWARK_DATABASE_POOL_SIZE: '10',
    BULWARK_MQTT_REDIS_URL: REDIS_URL,
    BULWARK_MQTT_CONNECTS_PER_SECOND: '100000',
    BULWARK_TELEMETRY_DAILY_READINGS_PER_DEVICE: '1000000000',
    BULWARK_TELEMETRY_DAILY_BYTES_PER_DEVICE: String(1024 ** 4),
    BULWARK_LOG_LEVEL: 'warn',
  };
  for (const [key, value] of Object.entries(UNLIMITED_DEVICE_RATES))
    env[`BULWARK_MQTT_${key.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`] = String(value);
  return env;
}

/** CPU seconds of a process and of its children (a primary and its workers), from /proc. */
function treeCpuSeconds(pid: number): number {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return 0;
  }
  return processCpuSeconds(pid) + children.reduce((sum, child) => sum + treeCpuSeconds(child), 0);
}

/** Busy and total CPU seconds of the whole machine so far (/proc/stat, USER_HZ = 100). */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busy: (total - idle) / 100, total: total / 100 };
}

/** Runs the load generator; its CPU is sampled while it runs (the last sample before it exits). */
function runLoad(job: LoadJob, dir: string): Promise<{ report: LoadReport; cpu: number }> {
  const file = join(dir, `job-${job.port}.json`);
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  let cpu = 0;
  let child: ChildProcess;
  const sampler = setInterval(() => {
    try {
      if (child.pid) cpu = processCpuSeconds(child.pid);
    } catch {
      // it has just exited
    }
  }, 100);
  return new Promise<{ report: LoadReport; cpu: number }>((resolve, reject) => {
    child = execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'bench/support/mqtt-load.ts', file],
      { maxBuffer: 1 << 20, timeout: (seconds + 300) * 1000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`load generator failed: ${stderr || error.message}`));
        if (stderr) process.stderr.write(stderr);
        resolve({ report: JSON.parse(stdout.trim().split('\n').pop()!) as LoadReport, cpu });
      },
    );
  }).finally(() => clearInterval(sampler));
}

const database = await postgres.create();
const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-workers-'));
const config = loadConfig({ dataDir: database.dataDir, env: {}, overrides: { database: { url: database.url }, log: { level: 'silent' } } });
const init = await initialize(config, DEFAULT_INIT, { env: {} });
const ca = readFileSync(init.caCertPath, 'utf8');
const devices: TestDevice[] = [];
{
  const platform = await openPlatform(config, { env: {} });
  const org = await organizationIdOf(platform, init.organization.slug);
  const product = await testProduct(platform, org);
  for (let i = 0; i < devicesWanted; i++) devices.push(await provisionTestDevice(platform, org, product, `BENCH-W-${i}`));
  await platform.close();
}
const storedRows = async () =>
  Number(
    (
      await database.db
        .selectFrom('telemetry_readings')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
const databaseName = new URL(database.url).pathname.slice(1);

console.log(
  `bench:workers: ${machine()}; ${devicesWanted} mTLS devices, ${openLoopRate > 0 ? `open loop at ${openLoopRate} msg/s` : `window ${window}`}, ${seconds} s per run, PostgreSQL + Redis`,
);
console.log(
  `load average before: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const rows: (string | number)[][] = [];
let baseline = 0;
let seqBase = 0;
try {
  for (const workers of [...new Set([1, most])]) {
    const node = await startServerProcess(database.dataDir, ca, nodeEnv(database.url), 180_000, ['--workers', String(workers)]);
    try {
      const before = {
        stored: await storedRows(),
        node: treeCpuSeconds(node.child.pid!),
        pg: snapshotPostgresCpu(databaseName),
        machine: machineCpu(),
      };
      const started = Date.now();
      const { report, cpu: loadCpu } = await runLoad(
        {
          port: node.mqttPort,
          ca,
          devices: devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert })),
          window,
          seconds,
          connectConcurrency: 50,
          seqBase,
          ...(openLoopRate > 0 ? { mode: 'rate' as const, rate: openLoopRate } : {}),
        },
        dir,
      );
      const wall = (Date.now() - started) / 1000;
      const after = {
        stored: await storedRows(),
        node: treeCpuSeconds(node.child.pid!),
        pg: snapshotPostgresCpu(databaseName),
        machine: machineCpu(),
      };
      seqBase += report.sent + 1;
      const pg = postgresCpuBetween(before.pg, after.pg);
      const rate = (openLoopRate > 0 ? report.ackedInRun : report.acked) / report.sendSeconds;
      if (workers === 1) baseline = rate;
      const cores = (cpuSeconds: number) => cpuSeconds / wall;
      const nodeCpu = after.node - before.node;
      const pgCpu = pg.backends + pg.background;
      const busy = after.machine.busy - before.machine.busy;
      rows.push([
        String(workers),
        rate,
        workers === 1 ? '1.00' : (rate / baseline).toFixed(2),
        after.stored - before.stored - report.acked,
        report.p50,
        report.p99,
        cores(nodeCpu),
        (nodeCpu / report.acked) * 1e6,
        cores(loadCpu),
        cores(pgCpu),
        cores(busy - nodeCpu - loadCpu - pgCpu),
        cores(busy),
        `${((100 * loadCpu) / busy).toFixed(0)}%`,
        loadavg()[0]!.toFixed(2),
      ]);
    } finally {
      const code = await node.stop(60_000);
      if (code !== 0) console.error(`the node with ${workers} workers exited ${code}`);
    }
  }
  console.log('');
  table(
    [
      'workers',
      openLoopRate > 0 ? 'acked msg/s' : 'stored msg/s',
      'vs 1',
      'stored - acked',
      'p50 ms',
      'p99 ms',
      'node cores',
      'node µs/msg',
      'load gen cores',
      'PostgreSQL cores',
      'other cores',
      'machine busy cores',
      'load gen share',
      'load avg 1m',
    ],
    rows,
  );
  console.log(
    '\n"cores": CPU seconds over the run\'s wall time (connections included); "node µs/msg": the node\'s CPU per stored message (connections included), which on a shared machine says more than msg/s; "other": every other process of the machine (Redis, other users\' work). "stored - acked": rows stored beyond the PUBACKs counted (0: nothing acknowledged missing; more: stored, not yet acknowledged when the run stopped).',
  );
} finally {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
}
