/**
 * Telemetry ingest over mutual TLS: N devices (1,000 by default), each with its own key and
 * certificate, keep a window of QoS 1 messages in flight against the platform's broker; every
 * PUBACK means "committed to the database". Printed beside the same load, from the same load
 * generator process, against a Mosquitto broker started here with the same certificates
 * (mutual TLS, no storage, no ACL), and against a bare Aedes broker on node:tls (support/bare-aedes.ts:
 * the platform's MQTT stack and runtime with nothing of the platform's own, the Node floor): stored
 * messages per second, publish-to-PUBACK p50/p99, and broker CPU per message, with the ratios
 * (Bulwark to each baseline, and bare Aedes to Mosquitto: how much of the gap the runtime and the
 * MQTT stack make before the platform does anything). Then it counts the stored rows: nothing
 * acknowledged may be missing.
 *
 * Broker CPU per message is counted from the first message on: the load generator connects every
 * device before it publishes, so the window holds no TLS handshake or login (those are shown
 * apart, as CPU per connection). With --pg it adds the PostgreSQL server's CPU over the same
 * window (support/postgres-cpu.ts): the platform database's backends and the server's background
 * processes, shown apart. SQLite telemetry batches are committed as the server commits them by
 * default, from a worker thread (`database.telemetryWriterThread`); --event-loop-writer commits them
 * on the event loop instead.
 *
 *   npm run bench:ingest -- [--pg] [--event-loop-writer] [--devices 1000] [--window 4] [--duration 10] [--rate 10000] [--profile file.cpuprofile]
 *                           [--profile-open file.cpuprofile] [--heap-profile file.heapprofile] [--timeline file.txt]
 *
 * The closed loop measures what each broker sustains; its latencies are mostly the load's own
 * queue (devices × window messages in flight). --rate adds an open-loop phase at that many
 * messages per second across the devices, on both brokers, for the publish→PUBACK latency of a
 * broker that is not saturated (0 skips it).
 *
 * --profile writes a V8 CPU profile of the broker process over the message phase only;
 * --profile-open does the same over the open loop's message phase (first message to the last PUBACK).
 * --heap-profile writes a sampling heap profile (V8's, every 32 KiB allocated on average, objects
 * collected since included) over the closed loop's message phase: where the garbage comes from.
 *
 * The open loop's event-loop delay and garbage-collection pauses are counted from its first
 * message: its connect phase (1,000 TLS handshakes and logins) is shown apart. --timeline writes
 * the open loop window by window (100 ms): its PUBACKs, the slow ones, and the broker's
 * mark-compacts and event-loop stalls beside them (support/timeline.ts), what set the p99.
 *
 * `npm run bench:ingest` runs this process, the broker's, with the V8 flags `bulwark` ships with
 * (SHIPPED_NODE_FLAGS: a 32 MB young generation). NODE_OPTIONS given to the bench (a V8 flag to
 * try on the broker, say) apply to this process only too: the load generator and the bare Aedes
 * broker run without either, so the baselines stay the same.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { loadServerTls, pkiPaths } from '../packages/server/src/pki/ca.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../packages/server/src/testing/devices.js';
import { machine, table } from './support/measure.js';
import { postgresCpuBetween, processCpuSeconds, snapshotPostgresCpu, type PostgresCpuSnapshot } from './support/postgres-cpu.js';
import { startMosquitto } from './support/mosquitto.js';
import type { LogMoverStats } from '../packages/server/src/telemetry/log-mover.js';
import type { LoadJob, LoadReport } from './support/mqtt-load.js';
import { startBenchPlatform } from './support/platform.js';
import { BrokerTimeline } from './support/timeline.js';

const { values } = parseArgs({
  options: {
    pg: { type: 'boolean', default: false },
    'event-loop-writer': { type: 'boolean', default: false },
    devices: { type: 'string', default: '1000' },
    window: { type: 'string', default: '4' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '10000' },
    profile: { type: 'string' },
    'profile-open': { type: 'string' },
    'profile-connect': { type: 'string' },
    'heap-profile': { type: 'string' },
    timeline: { type: 'string' },
  },
});
const devicesWanted = Number(values.devices);
const window = Number(values.window);
const seconds = Number(values.duration);
const openLoopRate = Number(values.rate);
for (const [name, n] of Object.entries({ devices: devicesWanted, window, duration: seconds })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
if (!Number.isInteger(openLoopRate) || openLoopRate < 0)
  throw new Error('--rate must be a whole number of messages per second (0 skips the open-loop phase)');

/** Runs the load generator process; returns its report. */
function runLoad(job: LoadJob, dir: string): Promise<LoadReport> {
  const file = join(dir, `job-${job.port}.json`);
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'bench/support/mqtt-load.ts', file],
      { maxBuffer: 1 << 20, timeout: (seconds + 300) * 1000, env: { ...process.env, NODE_OPTIONS: '' } },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`load generator failed: ${stderr || error.message}`));
        if (stderr) process.stderr.write(stderr);
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LoadReport);
      },
    );
  });
}

/** The 1-, 5- and 15-minute load averages: the machine is shared, and the figures mean little under other load. */
function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** CPU seconds (user + system) this process has used so far. */
function cpuOfThisProcess(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** CPU seconds so far of this process, of its event loop's thread, and of the SQLite writer thread (Linux; NaN where unread). */
interface ThreadsCpu {
  process: number;
  eventLoop: number;
  writer: number;
}

function threadCpu(id: number | null): number {
  if (id === null) return Number.NaN;
  try {
    return processCpuSeconds(`self/task/${id}`);
  } catch {
    return Number.NaN;
  }
}

function threadsCpu(writer: number | null): ThreadsCpu {
  return { process: cpuOfThisProcess(), eventLoop: threadCpu(process.pid), writer: threadCpu(writer) };
}

/**
 * Where the broker's CPU a message went between two readings, by thread: the event loop's (TLS,
 * MQTT, the platform's checks), the SQLite writer's (commits and the log's moves), and the rest
 * (V8's garbage-collection and compiler helpers, libuv's pool, the password judge).
 */
function byThread(from: ThreadsCpu, to: ThreadsCpu, messages: number): string {
  const us = (seconds: number) => ((seconds * 1e6) / messages).toFixed(1);
  const eventLoop = to.eventLoop - from.eventLoop;
  const writer = to.writer - from.writer;
  if (Number.isNaN(eventLoop)) return 'CPU by thread not read (not Linux)';
  const rest = to.process - from.process - eventLoop - (Number.isNaN(writer) ? 0 : writer);
  return `CPU µs a message by thread: event loop ${us(eventLoop)}, ${Number.isNaN(writer) ? 'no SQLite writer thread' : `SQLite writer ${us(writer)}`}, other threads (GC and compiler helpers, libuv) ${us(rest)}`;
}

/** The PostgreSQL server's CPU so far (--pg): the platform database's backends and the server's background processes. */
function postgresCpu(): PostgresCpuSnapshot | null {
  return bench.database ? snapshotPostgresCpu(bench.database) : null;
}

type Recorder = { start(): void; write(): Promise<void> };

/**
 * A V8 profile of this process (the broker's) for `file`, or null without one: a CPU profile, or
 * with `heap` a sampling heap profile (every allocation counted, the garbage included). The
 * profiler is enabled now, `start()` starts it (at the first message), `write()` stops it and
 * writes the file.
 */
async function profilerFor(file: string | undefined, kind: 'cpu' | 'heap' = 'cpu'): Promise<Recorder | null> {
  if (!file) return null;
  const session = new Session();
  session.connect();
  const heap = kind === 'heap';
  await session.post(heap ? 'HeapProfiler.enable' : 'Profiler.enable');
  const sampling = { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
  return {
    start: () => void (heap ? session.post('HeapProfiler.startSampling', sampling) : session.post('Profiler.start')),
    async write() {
      const { profile } = heap ? await session.post('HeapProfiler.stopSampling') : await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * Runs `then` once the gateway counts a telemetry message more than now: the end of a load's
 * connect phase (polling the counter, a few µs every 2 ms). Returns what stops the polling.
 */
function onFirstMessage(gateway: { stats: { telemetryMessages: number } }, then: () => void): () => void {
  const before = gateway.stats.telemetryMessages;
  const poll = setInterval(() => {
    if (gateway.stats.telemetryMessages === before) return;
    clearInterval(poll);
    then();
  }, 2);
  return () => clearInterval(poll);
}

/**
 * Starts the bare Aedes baseline (support/bare-aedes.ts) in its own process, like Mosquitto; it
 * runs without the NODE_OPTIONS given to the bench, as the load generator does.
 */
async function startBareAedes(
  dir: string,
  tls: { cert: string; key: string; ca: string },
): Promise<{ port: number; child: ChildProcess; watch: Watch }> {
  const file = join(dir, 'bare-aedes.json');
  writeFileSync(file, JSON.stringify(tls), { mode: 0o600 });
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/support/bare-aedes.ts', file], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_resolve, reject) =>
    child.once('exit', (code) => reject(new Error(`the bare Aedes broker exited (${code})`))),
  );
  const nextLine = async () =>
    JSON.parse(((await Promise.race([lines.next(), exited])) as IteratorResult<string>).value as string) as Record<string, number>;
  const { port } = await nextLine();
  const watch: Watch = async () => {
    child.stdin!.write('arm\n');
    await nextLine(); // { armed: true }
    return { cpuAtFirst: nextLine().then((line) => line.firstMessageCpuSeconds!), stop: () => undefined };
  };
  return { port: port!, child, watch };
}

/** Arms a baseline broker's watch for the next telemetry message: `cpuAtFirst` resolves with the broker's CPU seconds then. */
type Watch = () => Promise<{ cpuAtFirst: Promise<number>; stop(): void }>;

/** A baseline broker's run of `job`, its CPU from the first message on (as Bulwark's) and, before it, per connection. */
async function baselineRun(
  job: LoadJob,
  pid: number,
  watch: Watch,
  dir: string,
): Promise<{ report: LoadReport; cpuSeconds: number; cpuUs: number; connectUs: number }> {
  const watcher = await watch();
  const cpuAtStart = processCpuSeconds(pid);
  const report = await runLoad(job, dir);
  const cpuAtEnd = processCpuSeconds(pid);
  const cpuAtFirst = await Promise.race([watcher.cpuAtFirst, new Promise<number>((resolve) => setTimeout(resolve, 1000, Number.NaN))]);
  watcher.stop();
  if (Number.isNaN(cpuAtFirst)) throw new Error(`no message reached the baseline broker on port ${job.port}: nothing to measure`);
  return {
    report,
    cpuSeconds: cpuAtEnd - cpuAtFirst,
    cpuUs: ((cpuAtEnd - cpuAtFirst) * 1e6) / report.acked,
    connectUs: ((cpuAtFirst - cpuAtStart) * 1e6) / report.connected,
  };
}

interface WriterFigures {
  committedBatches: number;
  committedRows: number;
  /** SQLite: the log's moves so far (telemetry/log-mover.ts). */
  moves?: LogMoverStats;
}

/** The telemetry writer's batches committed since `before`, their mean size, and the SQLite log's slices moved meanwhile. */
function batchesSince(now: WriterFigures, before: WriterFigures): string {
  const batches = now.committedBatches - before.committedBatches;
  let text = `batches ${batches} (mean ${((now.committedRows - before.committedRows) / Math.max(1, batches)).toFixed(0)} rows)`;
  if (now.moves) {
    const slices = now.moves.slices - (before.moves?.slices ?? 0);
    const ms = now.moves.sliceMs - (before.moves?.sliceMs ?? 0);
    text += `; log moved in ${slices} slices (${(now.moves.movedRows - (before.moves?.movedRows ?? 0)).toLocaleString('en')} rows, ${ms.toFixed(0)} ms of transactions, longest ${now.moves.longestSliceMs.toFixed(1)} ms so far, ${now.moves.failures} failed)`;
  }
  return text;
}

const BASELINE_HEADER = [
  'figure',
  'Bulwark',
  'Mosquitto',
  'bare Aedes',
  'Bulwark / Mosquitto',
  'Bulwark / bare Aedes',
  'bare Aedes / Mosquitto',
] as const;

/** A row of the tables: Bulwark's figure beside the two baselines', and the three ratios. */
function compared(figure: string, bulwark: number, mosquittoFigure: number, aedesFigure: number): (string | number)[] {
  return [figure, bulwark, mosquittoFigure, aedesFigure, bulwark / mosquittoFigure, bulwark / aedesFigure, aedesFigure / mosquittoFigure];
}

console.log(`bench:ingest — ${machine()}; load average ${loadAverage()} at start`);
const bench = await startBenchPlatform({ postgres: values.pg ?? false, writerThread: values['event-loop-writer'] ? false : undefined });
const work = mkdtempSync(join(tmpdir(), 'bulwark-ingest-'));
let mosquitto: ChildProcess | null = null;
let aedes: ChildProcess | null = null;
try {
  const { platform, server } = bench;
  const gateway = server.mqtt!;
  const writerFigures = (): WriterFigures => {
    const mover = platform.telemetry.store.logMover;
    return { ...gateway.writer.stats, ...(mover ? { moves: { ...mover.stats } } : {}) };
  };
  const org = await organizationIdOf(platform, bench.org);
  const product = await testProduct(platform, org);
  const t0 = Date.now();
  const devices: TestDevice[] = [];
  for (let i = 0; i < devicesWanted; i++) devices.push(await provisionTestDevice(platform, org, product, `BENCH-${i}`));
  console.log(
    `${devices.length} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s; engine ${bench.engine}${bench.engine !== 'sqlite' ? '' : values['event-loop-writer'] ? ' (batches on the event loop)' : ' (batches from a worker thread)'}; window ${window} per device; ${seconds} s per run`,
  );
  const jobDevices = devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert }));

  // Bulwark: broker in this process, load generator in its own. The connect phase ends with the
  // first telemetry message.
  const rowsBefore = await platform.telemetry.store.count();
  const messagesBefore = gateway.stats.telemetryMessages;
  const cpuBefore = cpuOfThisProcess();
  let cpuAtFirst = Number.NaN;
  let pgAtFirst: PostgresCpuSnapshot | null = null;
  let messagesAtFirst = 0;
  const profiler = await profilerFor(values.profile);
  const heapProfiler = await profilerFor(values['heap-profile'], 'heap');
  const connectProfiler = await profilerFor(values['profile-connect']);
  let connectProfileWritten: Promise<void> | undefined;
  connectProfiler?.start();
  const writerThread = platform.telemetry.store.writerThreadId;
  let threadsAtFirst: ThreadsCpu | null = null;
  const stopPolling = onFirstMessage(gateway, () => {
    connectProfileWritten = connectProfiler?.write();
    threadsAtFirst = threadsCpu(writerThread);
    cpuAtFirst = threadsAtFirst.process;
    pgAtFirst = postgresCpu();
    messagesAtFirst = gateway.stats.telemetryMessages - messagesBefore;
    profiler?.start();
    heapProfiler?.start();
  });
  const ours = await runLoad({ port: gateway.port, ca: bench.ca, devices: jobDevices, window, seconds, connectConcurrency: 50 }, work);
  stopPolling();
  const threadsAtEnd = threadsCpu(writerThread);
  const cpuAtEnd = threadsAtEnd.process;
  const pgAtEnd = postgresCpu();
  await profiler?.write();
  await heapProfiler?.write();
  await connectProfileWritten;
  const stored = (await platform.telemetry.store.count()) - rowsBefore;
  const writerAfterClosed = writerFigures();
  const closedBatches = batchesSince(writerAfterClosed, { committedBatches: 0, committedRows: 0 });

  // The baselines, with the same server certificate, trusting the same CA for client certificates:
  // Mosquitto, and a bare Aedes on node:tls (the Node floor).
  const tls = loadServerTls(bench.dataDir, platform.box);
  const caPem = readFileSync(pkiPaths(bench.dataDir).caCert, 'utf8') + (await platform.pki.caChain());
  writeFileSync(join(work, 'server.pem'), tls.cert);
  writeFileSync(join(work, 'server.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(work, 'ca.pem'), caPem);
  const baseline = await startMosquitto(work);
  const mport = baseline.port;
  mosquitto = baseline.child;
  const bare = await startBareAedes(work, { cert: tls.cert, key: tls.key, ca: caPem });
  aedes = bare.child;
  const aport = bare.port;

  // Mosquitto's first message: a monitor client (connected before the load, so its own handshake
  // is not counted) subscribes to the telemetry topics and leaves at the first message, so
  // Mosquitto routes to it for a moment only. Bare Aedes says it itself (support/bare-aedes.ts).
  const watchMosquitto: Watch = async () => {
    const monitor = await mqtt.connectAsync(`mqtts://localhost:${mport}`, {
      clientId: 'bench-monitor',
      key: devices[0]!.key,
      cert: devices[0]!.cert,
      ca: bench.ca,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const cpuAtFirst = new Promise<number>((resolve) =>
      monitor.once('message', () => {
        resolve(processCpuSeconds(mosquitto!.pid!));
        monitor.end(true);
      }),
    );
    await monitor.subscribeAsync('d/+/telemetry', { qos: 0 });
    return { cpuAtFirst, stop: () => void monitor.end(true) };
  };
  const closedJob = { ca: bench.ca, devices: jobDevices, window, seconds, connectConcurrency: 50 };
  const mosquittoRun = await baselineRun({ ...closedJob, port: mport }, mosquitto.pid!, watchMosquitto, work);
  const aedesRun = await baselineRun({ ...closedJob, port: aport }, aedes.pid!, bare.watch, work);
  const theirs = mosquittoRun.report;

  // Open loop at a fixed rate, both brokers: latency when neither is saturated.
  let openLoop: {
    ours: LoadReport;
    theirs: LoadReport;
    aedes: LoadReport;
    baselineCpu: { mosquitto: number; aedes: number };
    stored: number;
    loopP99: number;
    loopMax: number;
    connectP99: number;
    brokerCpu: number;
    byThread: string;
    timeline: string | null;
    connectMax: number;
    gcPauses: number[];
    batches: string;
  } | null = null;
  if (openLoopRate > 0) {
    const rowsBeforeOpen = await platform.telemetry.store.count();
    const job = {
      ca: bench.ca,
      devices: jobDevices,
      window,
      seconds,
      connectConcurrency: 50,
      mode: 'rate' as const,
      rate: openLoopRate,
      grace: 10,
    };
    // The broker's event loop: how long it stalled (a stalled loop holds every PUBACK), in the
    // connect phase and from the first message on (seen by polling the gateway's counter).
    const connectDelay = monitorEventLoopDelay({ resolution: 5 });
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    connectDelay.enable();
    // And how much of that was garbage collection (every pause of the main thread, from the first message).
    const pauses: number[] = [];
    let messagePhase = false;
    const gc = new PerformanceObserver((list) => {
      if (messagePhase) pauses.push(...list.getEntries().map((e) => e.duration));
    });
    gc.observe({ entryTypes: ['gc'] });
    const openProfiler = await profilerFor(values['profile-open']);
    const timeline = values.timeline ? new BrokerTimeline() : null;
    const timelineFile = values.timeline ? join(work, 'open-loop-timeline.txt') : undefined;
    const moves = platform.telemetry.store.logMover?.stats;
    timeline?.start(moves ? () => ({ count: moves.slices, ms: moves.sliceMs }) : undefined);
    let cpuAtFirstOpen = Number.NaN;
    let threadsAtFirstOpen: ThreadsCpu | null = null;
    const stopPollingOpen = onFirstMessage(gateway, () => {
      connectDelay.disable();
      loopDelay.enable();
      messagePhase = true;
      threadsAtFirstOpen = threadsCpu(writerThread);
      cpuAtFirstOpen = threadsAtFirstOpen.process;
      openProfiler?.start();
    });
    const oursOpen = await runLoad({ ...job, port: gateway.port, seqBase: 1e9, ...(timelineFile ? { timelineFile } : {}) }, work);
    timeline?.stop();
    const timelineSummary = timeline && timelineFile ? timeline.report(timelineFile, values.timeline!) : null;
    stopPollingOpen();
    const threadsAtEndOpen = threadsCpu(writerThread);
    const brokerCpuOpen = threadsAtEndOpen.process - cpuAtFirstOpen;
    loopDelay.disable();
    connectDelay.disable();
    gc.disconnect();
    await openProfiler?.write();
    const storedOpen = (await platform.telemetry.store.count()) - rowsBeforeOpen;
    const openBatches = batchesSince(writerFigures(), writerAfterClosed);
    const theirsOpen = await baselineRun({ ...job, port: mport }, mosquitto.pid!, watchMosquitto, work);
    const aedesOpen = await baselineRun({ ...job, port: aport }, aedes.pid!, bare.watch, work);
    openLoop = {
      ours: oursOpen,
      theirs: theirsOpen.report,
      aedes: aedesOpen.report,
      baselineCpu: { mosquitto: theirsOpen.cpuSeconds, aedes: aedesOpen.cpuSeconds },
      stored: storedOpen,
      loopP99: loopDelay.percentile(99) / 1e6,
      loopMax: loopDelay.max / 1e6,
      brokerCpu: brokerCpuOpen,
      timeline: timelineSummary,
      byThread: threadsAtFirstOpen ? byThread(threadsAtFirstOpen, threadsAtEndOpen, oursOpen.acked) : '',
      connectP99: connectDelay.percentile(99) / 1e6,
      connectMax: connectDelay.max / 1e6,
      gcPauses: pauses,
      batches: openBatches,
    };
  }

  const oursRate = stored / ours.seconds;
  const theirsRate = theirs.acked / theirs.seconds;
  if (Number.isNaN(cpuAtFirst)) throw new Error('no message reached the Bulwark broker: nothing to measure');
  // With --pg the PostgreSQL server's CPU over the same window is part of the cost of a stored message.
  const pg = pgAtFirst && pgAtEnd ? postgresCpuBetween(pgAtFirst, pgAtEnd) : null;
  const messagesMeasured = Math.max(1, ours.acked - messagesAtFirst);
  const processCpuUs = ((cpuAtEnd - cpuAtFirst) * 1e6) / messagesMeasured;
  const oursCpuUs = processCpuUs + (pg ? ((pg.backends + pg.background) * 1e6) / messagesMeasured : 0);
  const oursConnectUs = ((cpuAtFirst - cpuBefore) * 1e6) / ours.connected;
  const aedesReport = aedesRun.report;
  const aedesRate = aedesReport.acked / aedesReport.seconds;
  console.log('');
  table(
    [...BASELINE_HEADER],
    [
      compared('messages/s (Bulwark: stored; the others: acknowledged)', oursRate, theirsRate, aedesRate),
      compared('publish→PUBACK p50 ms', ours.p50, theirs.p50, aedesReport.p50),
      compared('publish→PUBACK p99 ms', ours.p99, theirs.p99, aedesReport.p99),
      compared(
        pg ? 'broker + PostgreSQL CPU µs per message (after connect)' : 'broker CPU µs per message (after connect)',
        oursCpuUs,
        mosquittoRun.cpuUs,
        aedesRun.cpuUs,
      ),
      ...(pg
        ? [
            compared('  of which the Bulwark process', processCpuUs, mosquittoRun.cpuUs, aedesRun.cpuUs),
            ['  of which PostgreSQL backends (this database)', (pg.backends * 1e6) / messagesMeasured, '', '', '', '', ''],
            ['  of which PostgreSQL background (WAL writer, checkpointer)', (pg.background * 1e6) / messagesMeasured, '', '', '', '', ''],
          ]
        : []),
      compared(
        'its load generator: CPU µs per message (own process)',
        (ours.cpuSeconds * 1e6) / ours.acked,
        (theirs.cpuSeconds * 1e6) / theirs.acked,
        (aedesReport.cpuSeconds * 1e6) / aedesReport.acked,
      ),
      compared('broker CPU µs per connection (TLS + login)', oursConnectUs, mosquittoRun.connectUs, aedesRun.connectUs),
      compared('connections', ours.connected, theirs.connected, aedesReport.connected),
      compared('connect time s', ours.connectSeconds, theirs.connectSeconds, aedesReport.connectSeconds),
    ],
  );
  if (openLoop) {
    const { ours: o, theirs: m, aedes: a } = openLoop;
    console.log('');
    console.log(`open loop: ${openLoopRate} msg/s offered across ${o.connected} devices for ${seconds} s`);
    table(
      [...BASELINE_HEADER],
      [
        compared(
          'acknowledged during the run, msg/s',
          o.ackedInRun / o.sendSeconds,
          m.ackedInRun / m.sendSeconds,
          a.ackedInRun / a.sendSeconds,
        ),
        compared('publish→PUBACK p50 ms', o.p50, m.p50, a.p50),
        compared('publish→PUBACK p99 ms', o.p99, m.p99, a.p99),
      ],
    );
    console.log(
      `open loop: acknowledged ${o.acked}, stored ${openLoop.stored}, missing ${Math.max(0, o.acked - openLoop.stored)}; errors ${o.errors}; ${openLoop.batches}; Bulwark event-loop delay p99 ${openLoop.loopP99.toFixed(1)} ms, max ${openLoop.loopMax.toFixed(1)} ms (connect phase: p99 ${openLoop.connectP99.toFixed(1)} ms, max ${openLoop.connectMax.toFixed(1)} ms)`,
    );
    // Both on the same cores: the load generator's share is CPU the broker did not have.
    console.log(
      `open loop: CPU from the first message to the last PUBACK: Bulwark process ${openLoop.brokerCpu.toFixed(1)} s (${((openLoop.brokerCpu * 1e6) / o.acked).toFixed(1)} µs a message) and its load generator ${o.cpuSeconds.toFixed(1)} s over ${o.seconds.toFixed(1)} s; ` +
        `Mosquitto ${openLoop.baselineCpu.mosquitto.toFixed(1)} s (${((openLoop.baselineCpu.mosquitto * 1e6) / m.acked).toFixed(1)} µs a message), its load generator ${m.cpuSeconds.toFixed(1)} s; ` +
        `bare Aedes ${openLoop.baselineCpu.aedes.toFixed(1)} s (${((openLoop.baselineCpu.aedes * 1e6) / a.acked).toFixed(1)} µs a message), its load generator ${a.cpuSeconds.toFixed(1)} s`,
    );
    console.log(`open loop: Bulwark ${openLoop.byThread}`);
    if (openLoop.timeline) console.log(`open loop: ${openLoop.timeline}`);
    const gcs = openLoop.gcPauses;
    console.log(
      `open loop: Bulwark garbage collection ${gcs.length} pauses, ${gcs.reduce((a, b) => a + b, 0).toFixed(0)} ms in all, longest ${Math.max(0, ...gcs).toFixed(1)} ms`,
    );
    if (o.acked > openLoop.stored) process.exitCode = 1;
  }
  console.log('');
  console.log(
    `acknowledged ${ours.acked}, stored ${stored}, missing ${Math.max(0, ours.acked - stored)}; publish errors ${ours.errors}; ${closedBatches}`,
  );
  if (threadsAtFirst) console.log(`closed loop: Bulwark ${byThread(threadsAtFirst, threadsAtEnd, messagesMeasured)}`);
  console.log(`broker counters: ${JSON.stringify(gateway.stats)}`);
  console.log(
    pg
      ? `Bulwark CPU includes TLS, MQTT parsing, ACL, validation and the database writes of this process, plus the PostgreSQL server's: the backends of the platform's database${pg.lost > 0 ? ` (${pg.lost} ended during the run: their last CPU is not counted)` : ''} and the server's background processes (shared with any other database on this server).`
      : 'Bulwark CPU includes TLS, MQTT parsing, ACL, validation and the SQLite writes of this process.',
  );
  console.log(`load average ${loadAverage()} at end`);
  if (ours.acked > stored) process.exitCode = 1;
} finally {
  mosquitto?.kill('SIGTERM');
  aedes?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
  await bench.close();
}
