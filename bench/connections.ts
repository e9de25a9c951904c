/**
 * Idle device connections: mutual-TLS devices connect to the platform's broker and stay idle.
 * Prints the server memory per connection and the connects per second (TLS handshake + MQTT
 * CONNECT + certificate checks against the database + presence write), beside the same load
 * against a bare node:tls server in the same run (same certificates, client certificates required,
 * connections only held; as many processes as the platform has workers, sharing one port through
 * node:cluster): the floor a Node broker cannot go below.
 *
 * - Without --workers: `bulwark serve` as one process on SQLite (the embedded default), --devices
 *   connections.
 * - With --workers N: `bulwark serve --workers N` on PostgreSQL and Redis, N × --devices
 *   connections; each worker's count is read from its /metrics?scope=worker
 *   (bulwark_mqtt_sessions) and its open file descriptors from /proc, so "N workers hold N times"
 *   is shown, not assumed.
 *
 * The platform runs as its own process (bin/bulwark serve), and the clients in several load
 * generator processes of at most --per-loader connections each (bench/support/conn-load.ts): a
 * process here may hold 20,000 file descriptors, and each generator connects from its own loopback
 * address (127.0.0.2, .3…), since one source address has only 28,232 ephemeral ports towards the
 * server's port (a first run of 36,000 stopped at 28,228 with EADDRNOTAVAIL). Devices are provisioned in bulk and share one
 * key (bench/support/conn-fleet.ts). Memory is each holding process's resident set after the
 * connections minus before them (no forced GC on either side), summed over the processes: 3 s after
 * the last connect, and again after the --idle-seconds of idle CPU (by then V8's memory reducer,
 * which collects in a process gone idle, has usually run: less of the figure is garbage the
 * connects left, which varies from run to run).
 *
 * Idle CPU: once every connection is up, the holding processes' CPU time over --idle-seconds,
 * per second, with the devices sending nothing but their keep-alives (every --keepalive seconds;
 * bare TLS connections send 2 bytes as often and the bare server echoes them).
 *
 * The node runs the build, as it ships (bench/support/built.ts: tsc -b and the CLI's bundle, brought
 * up to date first; bin/bulwark.js), and the bare server compiled to plain JavaScript; with
 * --sources, both run from the sources through tsx instead (as this benchmark did until 2026-12).
 *
 *   npm run bench:connections -- [--devices 18000] [--workers N] [--concurrency 100] [--per-loader 9000] [--idle-seconds 20] [--keepalive 600] [--sources]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadServerTls } from '../packages/server/src/pki/ca.js';
import { loadConfig } from '../packages/server/src/ops/config.js';
import { newScrapeToken } from '../packages/server/src/ops/scrape-token.js';
import { openPlatform } from '../packages/server/src/platform.js';
import { DEFAULT_INIT, initialize } from '../packages/server/src/runner/init.js';
import { SERVER_TLS } from '../packages/server/src/transport/tls-policy.js';
import { organizationIdOf } from '../packages/server/src/testing/devices.js';
import { ENGINES } from '../packages/server/src/testing/engines.js';
import { REDIS_URL } from '../packages/server/src/testing/redis.js';
import { startServerProcess } from '../packages/server/src/testing/server-process.js';
import { compiledScript, useBuiltCli } from './support/built.js';
import { provisionConnFleet, type ConnFleet } from './support/conn-fleet.js';
import { processCpuSeconds } from './support/postgres-cpu.js';
import type { ConnJob, ConnReport } from './support/conn-load.js';
import { machine, table } from './support/measure.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '18000' },
    workers: { type: 'string' },
    concurrency: { type: 'string', default: '100' },
    'per-loader': { type: 'string', default: '9000' },
    'idle-seconds': { type: 'string', default: '20' },
    keepalive: { type: 'string', default: '600' },
    sources: { type: 'boolean', default: false },
  },
});
const perProcess = Number(values.devices);
const workers = values.workers === undefined ? 0 : Number(values.workers);
const concurrency = Number(values.concurrency);
const perLoader = Number(values['per-loader']);
const idleSeconds = Number(values['idle-seconds']);
const keepalive = Number(values.keepalive);
for (const [name, n] of Object.entries({
  devices: perProcess,
  concurrency,
  'per-loader': perLoader,
  'idle-seconds': idleSeconds,
  keepalive,
}))
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
if (!Number.isInteger(workers) || workers < 0) throw new Error('--workers must be a positive integer');
const processes = Math.max(workers, 1);
const count = perProcess * processes;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** KB of resident memory per connection: the holding processes' RSS summed, after minus before. */
const perConnection = (before: number[], after: number[], connections: number) =>
  (after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)) / 1024 / connections;

const fdsOf = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);

/** The processes of a node that hold its connections: its workers (its node children), or the process itself. */
function holders(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const forked = children.filter((child) => readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'node');
  return forked.length > 0 ? forked : [pid];
}

/** Starts a node child process (through tsx unless `plain`) and resolves with its first output line. */
function child(args: string[], stdin: 'ignore' | 'pipe' = 'ignore', plain = false): Promise<{ process: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, plain ? args : ['--conditions=source', '--import', 'tsx', ...args], {
    stdio: [stdin, 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve({ process: proc, line }));
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU milliseconds per second the processes spend over --idle-seconds. */
async function idleCpu(pids: number[]): Promise<number> {
  const before = cpuOf(pids);
  await pause(idleSeconds * 1000);
  return ((cpuOf(pids) - before) * 1000) / idleSeconds;
}

interface Run {
  connected: number;
  failures: number;
  firstError: string | null;
  perSecond: number;
  loaders: ChildProcess[];
}

/** Connects every device through load generators of at most --per-loader connections each; resolves once all are up. */
async function connectAll(mode: ConnJob['mode'], port: number, ca: string, fleet: ConnFleet, dir: string): Promise<Run> {
  const loaders = Math.ceil(fleet.devices.length / perLoader);
  const share = Math.ceil(fleet.devices.length / loaders);
  const started = [];
  for (let i = 0; i < loaders; i++) {
    const file = join(dir, `${mode}-${i}.json`);
    const job: ConnJob = {
      mode,
      port,
      ca,
      key: fleet.key,
      devices: fleet.devices.slice(i * share, (i + 1) * share),
      concurrency: Math.max(1, Math.ceil(concurrency / loaders)),
      localAddress: `127.0.0.${i + 2}`,
      keepalive,
    };
    writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
    started.push(child(['bench/support/conn-load.ts', file]));
  }
  const runs = await Promise.all(started);
  const reports = runs.map((r) => JSON.parse(r.line) as ConnReport);
  const connected = reports.reduce((sum, r) => sum + r.connected, 0);
  const seconds = (Math.max(...reports.map((r) => r.endedAt)) - Math.min(...reports.map((r) => r.startedAt))) / 1000;
  return {
    connected,
    failures: reports.reduce((sum, r) => sum + r.failures, 0),
    firstError: reports.find((r) => r.firstError)?.firstError ?? null,
    perSecond: connected / seconds,
    loaders: runs.map((r) => r.process),
  };
}

function stopLoaders(run: Run | null): void {
  for (const loader of run?.loaders ?? []) loader.kill('SIGTERM');
}

const engine = ENGINES.find((e) => e.engine === (workers > 0 ? 'postgres' : 'sqlite'))!;
if (engine.skip) throw new Error(`bench:connections --workers needs PostgreSQL: ${engine.skip}`);

if (!values.sources) useBuiltCli();
console.log(`bench:connections — ${machine()}`);
console.log(
  `${count} idle mTLS devices: ${workers > 0 ? `bulwark serve --workers ${workers} (PostgreSQL, Redis), ${perProcess} per worker` : 'bulwark serve, one process (SQLite)'}; ${values.sources ? 'the node and the bare server from the sources through tsx' : 'the node from the build (bin/bulwark.js), the bare server compiled'}; load average ${load()}`,
);
const database = await engine.create();
const dir = mkdtempSync(join(tmpdir(), 'bulwark-conns-'));
const config = loadConfig({ dataDir: database.dataDir, env: {}, overrides: { database: { url: database.url }, log: { level: 'silent' } } });
const init = await initialize(config, DEFAULT_INIT, { env: {} });
const ca = readFileSync(init.caCertPath, 'utf8');
const scrape = newScrapeToken();
let fleet: ConnFleet;
let serverTls: { cert: string; key: string; ca: string };
{
  const platform = await openPlatform(config, { env: {} });
  const t0 = Date.now();
  fleet = await provisionConnFleet(platform, await organizationIdOf(platform, init.organization.slug), count, 'CONN');
  console.log(`${count} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s (bulk; one key shared)`);
  serverTls = { ...loadServerTls(config.dataDir, platform.box), ca: await platform.pki.caChain() };
  await platform.close();
}

const rows: (string | number)[][] = [];
let ours: Run | null = null;
let bare: Run | null = null;
let bareServer: ChildProcess | null = null;
try {
  // --- Bulwark ------------------------------------------------------------------------------
  const env: Record<string, string> = {
    BULWARK_DATABASE_URL: database.url,
    BULWARK_DATABASE_POOL_SIZE: '10',
    // Every device connects once, as fast as the machine allows: the node-wide connect rate is
    // raised out of the way (its default, 1,000 a second, is what a reconnect storm is held to).
    BULWARK_MQTT_CONNECTS_PER_SECOND: '100000',
    BULWARK_METRICS_TOKEN_HASH: scrape.tokenHash,
    BULWARK_LOG_LEVEL: 'warn',
    ...(workers > 0 ? { BULWARK_MQTT_REDIS_URL: REDIS_URL } : {}),
  };
  const node = await startServerProcess(database.dataDir, ca, env, 180_000, workers > 0 ? ['--workers', String(workers)] : []);
  try {
    await pause(3000);
    const pids = holders(node.child.pid!);
    const primaryBefore = workers > 0 ? rssOf(node.child.pid!) : 0;
    const before = pids.map(rssOf);
    const fdsBefore = pids.map(fdsOf);
    const serving = workers > 0 ? [node.child.pid!, ...pids] : pids;
    const idleEmpty = await idleCpu(serving);
    const cpuBefore = cpuOf(serving);
    ours = await connectAll('mqtt', node.mqttPort, ca, fleet, dir);
    const cpu = cpuOf(serving) - cpuBefore;
    await pause(3000);
    const after = pids.map(rssOf);
    const idle = await idleCpu(serving);
    const settled = pids.map(rssOf);
    const metrics = async (path: string) => {
      const res = await fetchMetrics(`https://localhost:${node.httpsPort}${path}`, ca, scrape.token);
      return {
        worker: Number(/^bulwark_worker (\d+)$/m.exec(res)?.[1] ?? 0),
        sessions: Number(/^bulwark_mqtt_sessions (\d+)$/m.exec(res)?.[1] ?? Number.NaN),
      };
    };
    const perWorker = new Map<number, number>();
    for (let i = 0; i < 20 * processes && perWorker.size < processes; i++) {
      const { worker, sessions } = await metrics('/metrics?scope=worker');
      perWorker.set(worker, sessions);
    }
    const nodeSessions = (await metrics('/metrics')).sessions;
    console.log(
      `\nBulwark: ${ours.connected} connected, ${ours.failures} failed${ours.firstError ? ` (first: ${ours.firstError})` : ''}; load average ${load()}`,
    );
    table(
      ['process', 'pid', 'open fds before', 'open fds', 'RSS before, MB', 'RSS after, MB', 'KB per connection held', 'after the idle time'],
      pids.map((pid, i) => [
        workers > 0 ? `worker process ${i + 1}` : 'node',
        String(pid),
        fdsBefore[i]!,
        fdsOf(pid),
        before[i]! / 2 ** 20,
        after[i]! / 2 ** 20,
        (after[i]! - before[i]!) / 1024 / Math.max(1, fdsOf(pid) - fdsBefore[i]!),
        (settled[i]! - before[i]!) / 1024 / Math.max(1, fdsOf(pid) - fdsBefore[i]!),
      ]),
    );
    console.log(
      `sessions from /metrics?scope=worker: ${[...perWorker.entries()]
        .sort(([a], [b]) => a - b)
        .map(([w, n]) => `worker ${w}: ${n}`)
        .join(', ')}; the node's /metrics: ${nodeSessions}` +
        (workers > 0 ? `; primary RSS ${((rssOf(node.child.pid!) - primaryBefore) / 2 ** 20).toFixed(1)} MB more than before` : ''),
    );
    rows.push(['connections held', ours.connected]);
    rows.push(['server memory per idle connection, KB', perConnection(before, after, ours.connected)]);
    rows.push([`the same after ${idleSeconds} s idle, KB`, perConnection(before, settled, ours.connected)]);
    rows.push(['connects per second', ours.perSecond]);
    rows.push(['server CPU per connect, ms', (cpu * 1000) / ours.connected]);
    rows.push(['server CPU idle with no connection, ms/s', idleEmpty]);
    rows.push([`server CPU idle with the connections (keep-alive ${keepalive} s), ms/s`, idle]);
    stopLoaders(ours);
  } finally {
    const code = await node.stop(300_000);
    if (code !== 0) console.error(`the node exited ${code}:\n${node.output().slice(-3000)}`);
  }

  // --- bare node:tls, as many processes --------------------------------------------------------
  const tlsJob = join(dir, 'tls-server.json');
  writeFileSync(
    tlsJob,
    JSON.stringify({ cert: serverTls.cert, key: serverTls.key, ca: serverTls.ca, workers: processes, policy: SERVER_TLS }),
    {
      mode: 0o600,
    },
  );
  const started = values.sources
    ? await child(['bench/support/bare-tls.ts', tlsJob], 'pipe')
    : await child([compiledScript('bench/support/bare-tls.ts', dir), tlsJob], 'pipe', true);
  bareServer = started.process;
  const { port, pids } = JSON.parse(started.line) as { port: number; pids: number[] };
  await pause(3000);
  const before = pids.map(rssOf);
  const serving = processes > 1 ? [bareServer.pid!, ...pids] : pids;
  const idleEmpty = await idleCpu(serving);
  const cpuBefore = cpuOf(serving);
  bare = await connectAll('tls', port, ca, fleet, dir);
  const cpu = cpuOf(serving) - cpuBefore;
  await pause(3000);
  const after = pids.map(rssOf);
  const idle = await idleCpu(serving);
  const settled = pids.map(rssOf);
  const lines = createInterface({ input: bareServer.stdout! });
  const counted = new Promise<number[]>((resolve) => lines.once('line', (line) => resolve(JSON.parse(line) as number[])));
  bareServer.stdin!.write('count\n');
  const counts = await counted;
  console.log(
    `\nbare node:tls: ${bare.connected} connected, ${bare.failures} failed${bare.firstError ? ` (first: ${bare.firstError})` : ''}; held per process: ${counts.join(', ')}; load average ${load()}`,
  );
  const bareRows = [
    bare.connected,
    perConnection(before, after, bare.connected),
    perConnection(before, settled, bare.connected),
    bare.perSecond,
    (cpu * 1000) / bare.connected,
    idleEmpty,
    idle,
  ];
  console.log('');
  table(
    ['figure', 'Bulwark', 'bare node:tls', 'ratio'],
    rows.map(([name, value], i) => [name!, value!, bareRows[i]!, (value as number) / bareRows[i]!]),
  );
  console.log(
    `\nload average at the end: ${load()}. Bulwark connects include the MQTT CONNECT, the certificate's record and device status read from the database, and the presence write; the load generators run on the same cores, so connects per second follow the share of the cores the server got (server CPU per connect does not: it is the holding processes' CPU time over the connects, the primary's included).`,
  );
} finally {
  stopLoaders(ours);
  stopLoaders(bare);
  bareServer?.kill('SIGTERM');
  await database.close();
  rmSync(dir, { recursive: true, force: true });
}

/** One scrape over a new connection (no agent): the primary hands each new connection to the next worker. */
function fetchMetrics(url: string, caPem: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}: ${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
  });
}
