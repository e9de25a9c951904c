/**
 * Live-state fan-out (issue 14): N consumers (1,000 by default), each streaming its own device's
 * live state (`GET /api/v1/my/devices/:id/live`, server-sent events) while N devices publish
 * QoS 1 telemetry over mutual TLS at --rate messages per second each. Measured on the consumer
 * side: telemetry-to-app latency (receive time minus the send time the device put in the
 * message) p50/p99, messages delivered per second, and how many acknowledged messages never
 * arrived; on the server: its CPU per delivered message, read from /proc (the server runs in its
 * own process, `bulwark serve`).
 *
 * Printed beside the same load, in the same run, against a Mosquitto broker started here with
 * the same certificates (mutual TLS, no storage, no ACL): the same N publishers, and N
 * subscribers (device-certificate MQTT clients, each subscribed to one device's telemetry topic)
 * in place of the streams. Bulwark's path is broker → database commit → stream; Mosquitto's is
 * broker → subscriber.
 *
 *   npm run bench:app-live -- [--devices 1000] [--rate 1] [--duration 10]
 *
 * Three processes per run: the server (or Mosquitto), the publishers (bench/support/live-publishers.ts)
 * and this one, the consumers; the CPU of both load-generator processes is printed, so a reader
 * can tell whether the load generator, not the server, was the limit. Connecting (TLS handshakes,
 * sign-in of the streams) happens before the measured phase and is not counted. Server CPU per
 * delivered message is everything the server process did over the phase, divided by the messages
 * delivered; at a low rate much of it is what the server spends anyway with every connection
 * open, so that idle rate is read just before (3 s) and a second row subtracts it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { newUserRow } from '../packages/server/src/accounts/store.js';
import { loadConfig } from '../packages/server/src/ops/config.js';
import { openPlatform } from '../packages/server/src/platform.js';
import { loadServerTls, pkiPaths } from '../packages/server/src/pki/ca.js';
import { DEFAULT_INIT } from '../packages/server/src/runner/init.js';
import { organizationIdOf } from '../packages/server/src/testing/devices.js';
import { prepareDataDir, startServerProcess } from '../packages/server/src/testing/server-process.js';
import { machine, table } from './support/measure.js';
import { startMosquitto } from './support/mosquitto.js';
import type { PublisherJob, PublisherReport } from './support/live-publishers.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '1' },
    duration: { type: 'string', default: '10' },
  },
});
const devicesWanted = Number(values.devices);
const rate = Number(values.rate);
const seconds = Number(values.duration);
for (const [name, n] of Object.entries({ devices: devicesWanted, rate, duration: seconds })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
const CONNECT_CONCURRENCY = 50;
/** After the last PUBACK, how long messages may still be on their way to the consumers. */
const DELIVERY_GRACE_MS = 10_000;
/** How long the server's idle CPU is read, connections open, before the measured phase. */
const IDLE_SECONDS = 3;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of this machine. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function cpuOfThisProcess(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Runs `work` on each item, `concurrency` at a time. */
async function eachLimited<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

/** What the consumer side saw: one latency per delivered message, and which messages came. */
class Deliveries {
  readonly latencies: number[] = [];
  readonly seqs = new Set<number>();
  duplicates = 0;
  lastAt = 0;

  record(value: { sentAt?: unknown; seq?: unknown }, receivedAt: number): void {
    if (typeof value.sentAt !== 'number' || typeof value.seq !== 'number') return;
    if (this.seqs.has(value.seq)) {
      this.duplicates++;
      return;
    }
    this.seqs.add(value.seq);
    this.latencies.push(receivedAt - value.sentAt);
    this.lastAt = receivedAt;
  }

  percentile(q: number): number {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  }
}

/** One consumer's live stream; telemetry readings go to `deliveries` as they arrive. */
interface Stream {
  close(): void;
  /** Set when the server ended the stream (an `end` event or a closed connection). */
  endedEarly: boolean;
}

function openStream(port: number, ca: string, deviceId: string, token: string, deliveries: Deliveries): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: 'localhost',
        port,
        path: `/api/v1/my/devices/${deviceId}/live`,
        ca,
        agent: false,
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => reject(new Error(`live stream of ${deviceId} refused: ${res.statusCode} ${text}`)));
          return;
        }
        const stream: Stream = { close: () => req.destroy(), endedEarly: false };
        let closing = false;
        stream.close = () => {
          closing = true;
          req.destroy();
        };
        let buffer = '';
        let opened = false;
        res.on('data', (chunk: string) => {
          const receivedAt = nowMs();
          buffer += chunk;
          for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = '';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (event === 'telemetry') {
              const body = JSON.parse(data) as { readings: { values: { sentAt?: unknown; seq?: unknown } }[] };
              for (const reading of body.readings) deliveries.record(reading.values, receivedAt);
            } else if (event === 'end') stream.endedEarly = true;
            else if (event === 'reported' && !opened) {
              // The first event: the stream is open and following the device.
              opened = true;
              resolve(stream);
            }
          }
        });
        res.on('close', () => {
          if (!closing) stream.endedEarly = true;
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface Publishers {
  connectSeconds: number;
  /** Starts the measured phase; resolves with the report when the publishers are done. */
  go(): Promise<PublisherReport>;
}

/** Starts the publishers process against `port`; resolves once every device is connected. */
async function startPublishers(job: PublisherJob, dir: string): Promise<Publishers> {
  const file = join(dir, `publishers-${job.port}.json`);
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'bench/support/live-publishers.ts', file],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the publishers process exited with ${code}`));
      child.once('exit', onExit);
      lines.once('line', (line) => {
        child.off('exit', onExit);
        resolve(line);
      });
    });
  const ready = JSON.parse(await next()) as { connectSeconds: number };
  return {
    connectSeconds: ready.connectSeconds,
    go: async () => {
      const report = next();
      child.stdin!.write('go\n');
      return JSON.parse(await report) as PublisherReport;
    },
  };
}

interface Outcome {
  p50: number;
  p99: number;
  delivered: number;
  /** From the start signal to the last delivery. */
  phaseSeconds: number;
  serverCpuSeconds: number;
  /** Server CPU (share of one core) with every connection open and nothing sent, just before. */
  idleShare: number;
  /** The machine's 1-minute load average at the start and the end of the phase (how shared it was). */
  loadAverage: [number, number];
  consumersCpuSeconds: number;
  publishers: PublisherReport;
  publishersConnectSeconds: number;
  /** Acknowledged to the device, never delivered to its consumer. */
  lost: number;
  duplicates: number;
  endedEarly: number;
}

/**
 * The measured phase, the same for both: the publishers start, publish for `seconds`, collect
 * their PUBACKs; then every acknowledged message has DELIVERY_GRACE_MS to reach its consumer.
 */
async function measure(serverPid: number, publishers: Publishers, deliveries: Deliveries, endedEarly: () => number): Promise<Outcome> {
  // Let what the connections started (presence, subscriptions) settle before the clock starts.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  // What the server spends with every connection open and nothing sent (keep-alives, timers).
  const idle0 = processCpuSeconds(serverPid);
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idleShare = (processCpuSeconds(serverPid) - idle0) / IDLE_SECONDS;
  const serverCpu0 = processCpuSeconds(serverPid);
  const selfCpu0 = cpuOfThisProcess();
  const started = nowMs();
  const loadBefore = loadavg()[0]!;
  const report = await publishers.go();
  const deadline = Date.now() + DELIVERY_GRACE_MS;
  const missing = () => report.ackedSeqs.filter((seq) => !deliveries.seqs.has(seq)).length;
  while (Date.now() < deadline && missing() > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  const serverCpu = processCpuSeconds(serverPid) - serverCpu0;
  const consumersCpu = cpuOfThisProcess() - selfCpu0;
  return {
    p50: deliveries.percentile(0.5),
    p99: deliveries.percentile(0.99),
    delivered: deliveries.seqs.size,
    phaseSeconds: (Math.max(deliveries.lastAt, started) - started) / 1000,
    serverCpuSeconds: serverCpu,
    idleShare,
    loadAverage: [loadBefore, loadavg()[0]!],
    consumersCpuSeconds: consumersCpu,
    publishers: report,
    publishersConnectSeconds: publishers.connectSeconds,
    lost: missing(),
    duplicates: deliveries.duplicates,
    endedEarly: endedEarly(),
  };
}

console.log(`bench:app-live — ${machine()}`);
const work = mkdtempSync(join(tmpdir(), 'bulwark-app-live-'));
const t0 = Date.now();
const prepared = await prepareDataDir(devicesWanted, 'LIVE');
const { dataDir, ca, devices } = prepared;
let server: Awaited<ReturnType<typeof startServerProcess>> | null = null;
let mosquitto: ChildProcess | null = null;
const streams: Stream[] = [];
const subscribers: MqttClient[] = [];
try {
  // One consumer per device, owner of it (the membership a claim leaves), with a bearer session.
  const config = loadConfig({ dataDir, env: {}, overrides: { log: { level: 'silent' } } });
  const platform = await openPlatform(config, { env: {} });
  const tokens: string[] = [];
  try {
    const org = await organizationIdOf(platform, DEFAULT_INIT.organizationSlug);
    for (const [i, device] of devices.entries()) {
      const now = Date.now();
      const user = newUserRow({
        organizationId: org,
        kind: 'consumer',
        email: `app-${i}@bench.invalid`,
        name: `Consumer ${i}`,
        role: null,
        passwordHash: null,
        emailVerifiedAt: now,
        mustChangePassword: false,
        now,
      });
      await platform.db.transaction().execute(async (trx) => {
        await platform.accounts.store.insertUser(user, trx);
        await platform.binding.store.insertMember(
          { device_id: device.id, user_id: user.id, organization_id: org, role: 'owner', label: null, invited_by: null, since: now },
          trx,
        );
        const issued = await platform.accounts.sessions.issue(
          user,
          'full',
          { transport: 'bearer', sourceIp: '127.0.0.1', userAgent: 'bench:app-live' },
          trx,
        );
        tokens.push(issued.token);
      });
    }
    // Mosquitto gets the same server certificate and trusts the same CA for client certificates.
    const tls = loadServerTls(dataDir, platform.box);
    writeFileSync(join(work, 'server.pem'), tls.cert);
    writeFileSync(join(work, 'server.key'), tls.key, { mode: 0o600 });
    writeFileSync(join(work, 'ca.pem'), readFileSync(pkiPaths(dataDir).caCert, 'utf8') + (await platform.pki.caChain()));
  } finally {
    await platform.close();
  }
  console.log(
    `${devices.length} devices and ${tokens.length} consumers (one owned device and one bearer session each) prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${rate} msg/s per device for ${seconds} s, QoS 1`,
  );
  const jobDevices = devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert }));
  const job = (port: number): PublisherJob => ({
    port,
    ca,
    devices: jobDevices,
    rate,
    seconds,
    grace: 10,
    connectConcurrency: CONNECT_CONCURRENCY,
  });

  // Bulwark: the server in its own process, the HTTP limiter and the node's connect rate raised
  // (every stream comes from 127.0.0.1, every device connects at once). One stream per consumer
  // is within binding.maxLiveStreamsPerConsumer; the per-device publish rates stay as deployed.
  server = await startServerProcess(dataDir, ca, {
    BULWARK_HTTP_RATE_LIMIT_PER_MINUTE: '1000000000',
    BULWARK_MQTT_CONNECTS_PER_SECOND: '100000',
  });
  const ours = new Deliveries();
  let t = Date.now();
  const serverPort = server.httpsPort;
  await eachLimited(devices, CONNECT_CONCURRENCY, async (device, i) => {
    streams.push(await openStream(serverPort, ca, device.id, tokens[i]!, ours));
  });
  const streamsSeconds = (Date.now() - t) / 1000;
  t = Date.now();
  const ourPublishers = await startPublishers(job(server.mqttPort), work);
  const oursOutcome = await measure(server.child.pid!, ourPublishers, ours, () => streams.filter((s) => s.endedEarly).length);
  const serverMemory = server.memory();
  for (const stream of streams) stream.close();
  const exit = await server.stop();
  server = null;
  console.log(
    `Bulwark: ${streams.length} streams open in ${streamsSeconds.toFixed(1)} s, ${devices.length} devices connected in ${ourPublishers.connectSeconds.toFixed(1)} s; server exited with ${exit}, peak RSS ${(serverMemory.peak / 2 ** 20).toFixed(0)} MiB`,
  );

  // Mosquitto, same certificates, mutual TLS; subscribers are device-certificate MQTT clients.
  const baseline = await startMosquitto(work);
  const mport = baseline.port;
  mosquitto = baseline.child;
  const theirs = new Deliveries();
  let subscribersEnded = 0;
  t = Date.now();
  await eachLimited(devices, CONNECT_CONCURRENCY, async (device) => {
    const client = await mqtt.connectAsync(`mqtts://localhost:${mport}`, {
      clientId: `app-${device.id}`,
      key: device.key,
      cert: device.cert,
      ca,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
    });
    client.on('error', () => undefined);
    client.on('close', () => subscribersEnded++);
    client.on('message', (_topic, payload) => {
      const receivedAt = nowMs();
      theirs.record((JSON.parse(payload.toString('utf8')) as { values: { sentAt?: unknown; seq?: unknown } }).values, receivedAt);
    });
    await client.subscribeAsync(`d/${device.id}/telemetry`, { qos: 1 });
    subscribers.push(client);
  });
  const subscribersSeconds = (Date.now() - t) / 1000;
  const theirPublishers = await startPublishers(job(mport), work);
  const theirsOutcome = await measure(mosquitto.pid!, theirPublishers, theirs, () => subscribersEnded);
  console.log(
    `Mosquitto: ${subscribers.length} subscribers connected in ${subscribersSeconds.toFixed(1)} s, ${devices.length} devices in ${theirPublishers.connectSeconds.toFixed(1)} s`,
  );

  const perSecond = (o: Outcome) => o.delivered / o.phaseSeconds;
  const cpuUs = (o: Outcome) => (o.serverCpuSeconds * 1e6) / Math.max(1, o.delivered);
  const aboveIdleUs = (o: Outcome) => (Math.max(0, o.serverCpuSeconds - o.idleShare * o.phaseSeconds) * 1e6) / Math.max(1, o.delivered);
  const o = oursOutcome;
  const m = theirsOutcome;
  console.log('');
  table(
    ['figure', 'Bulwark', 'Mosquitto', 'ratio'],
    [
      ['telemetry→app latency p50 ms', o.p50, m.p50, o.p50 / m.p50],
      ['telemetry→app latency p99 ms', o.p99, m.p99, o.p99 / m.p99],
      ['delivered msg/s', perSecond(o), perSecond(m), perSecond(o) / perSecond(m)],
      ['server CPU µs per delivered message', cpuUs(o), cpuUs(m), cpuUs(o) / cpuUs(m)],
      ['server CPU µs per delivered message, above idle', aboveIdleUs(o), aboveIdleUs(m), aboveIdleUs(o) / aboveIdleUs(m)],
      ['server CPU, share of one core', o.serverCpuSeconds / o.phaseSeconds, m.serverCpuSeconds / m.phaseSeconds, '—'],
      [`server CPU idle, share of one core (${IDLE_SECONDS} s before, all connected)`, o.idleShare, m.idleShare, '—'],
    ],
  );
  console.log('');
  for (const [name, x] of [
    ['Bulwark', o],
    ['Mosquitto', m],
  ] as const) {
    const p = x.publishers;
    console.log(
      `${name}: published ${p.sent}, acknowledged ${p.ackedSeqs.length}, delivered ${x.delivered}, lost (acknowledged, never delivered) ${x.lost}; publish errors ${p.errors}, duplicates ${x.duplicates}, devices disconnected ${p.disconnected}, consumers cut off ${x.endedEarly}`,
    );
  }
  for (const [name, x] of [
    ['Bulwark', o],
    ['Mosquitto', m],
  ] as const) {
    console.log(
      `${name} run, load generator CPU: consumers process ${x.consumersCpuSeconds.toFixed(2)} s (${((100 * x.consumersCpuSeconds) / x.phaseSeconds).toFixed(0)}% of a core), publishers process ${x.publishers.cpuSeconds.toFixed(2)} s (${((100 * x.publishers.cpuSeconds) / x.publishers.sendSeconds).toFixed(0)}% of a core), over ${x.phaseSeconds.toFixed(1)} s; machine load average ${x.loadAverage[0].toFixed(1)} → ${x.loadAverage[1].toFixed(1)} on ${cpus().length} CPUs`,
    );
  }
  console.log(
    'Bulwark: broker → database commit (the PUBACK waits for it) → live stream over HTTPS; its CPU includes TLS, MQTT, the ACL, validation, the SQLite writes and the server-sent events. Mosquitto: broker → subscriber, no storage, no ACL.',
  );
  if (o.lost > 0) process.exitCode = 1;
} finally {
  for (const stream of streams) stream.close();
  for (const client of subscribers) client.end(true);
  mosquitto?.kill('SIGTERM');
  if (server) await server.stop();
  rmSync(work, { recursive: true, force: true });
  prepared.remove();
}
