/**
 * A long fuzz run against a running node (`bulwark serve` in its own process, SQLite): an
 * authenticated device sends mutated MQTT packets (default 1,000,000): PUBLISHes with fuzzed
 * topics, payloads, QoS and properties, SUBSCRIBE/UNSUBSCRIBE with fuzzed filters, stray
 * PUBACKs and PINGREQs, and 0.2 % of frames with their bytes flipped (the broker drops such a
 * connection; the fuzzer reconnects); every 1,000th connection sends a mutated CONNECT instead.
 * Then the owner sends fuzzed JSON bodies to every route that takes one (default 200,000; ~1,000 a
 * second here, so 1,000,000 takes a quarter of an hour).
 * Meanwhile a well-behaved device publishes QoS 1 telemetry 20 times a second.
 *
 * Prints the server's memory before, after each phase, and after a settle, with its peak; the
 * well-behaved device's PUBACK latency before and during the fuzz (the same-run baseline), and
 * its failures; the HTTP status counts. Exits 1 if the server died, answered a 5xx or a body
 * without the error shape, the well-behaved device lost a message, or memory grew beyond the bound.
 *
 *   node --conditions=source --import tsx bench/fuzz.ts [--packets 1000000] [--bodies 200000] [--seed N] [--leak-mb 100]
 */
import https from 'node:https';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { deviceTopic, TELEMETRY } from '../packages/protocol/src/index.js';
import { answeredWell, bodyOperations, fuzzBody } from '../packages/server/src/testing/fuzz.js';
import { HttpClient } from '../packages/server/src/testing/http.js';
import { connectDevice, settle } from '../packages/server/src/testing/mqtt.js';
import { RawMqtt } from '../packages/server/src/testing/raw-mqtt.js';
import { firstSignIn } from '../packages/server/src/testing/server.js';
import { prepareDataDir, startServerProcess } from '../packages/server/src/testing/server-process.js';
import { machine, table } from './support/measure.js';

const { values } = parseArgs({
  options: {
    packets: { type: 'string', default: '1000000' },
    bodies: { type: 'string', default: '200000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    'leak-mb': { type: 'string', default: '100' },
  },
});
const PACKETS = Number(values.packets);
const BODIES = Number(values.bodies);
const SEED = Number(values.seed);
const LEAK_MB = Number(values['leak-mb']);
const MB = 2 ** 20;

const data = await prepareDataDir(2, 'FUZZ');
const [fuzzer, good] = data.devices as [(typeof data.devices)[0], (typeof data.devices)[0]];
const server = await startServerProcess(data.dataDir, data.ca, {
  BULWARK_LOG_LEVEL: 'error',
  // The fuzzer may publish as fast as it can: the per-device meters would otherwise hold and cut it.
  BULWARK_MQTT_PUBLISHES_PER_SECOND: '1000000',
  BULWARK_MQTT_PUBLISH_BURST: '1000000',
  BULWARK_MQTT_READINGS_PER_SECOND: '1000000000',
  BULWARK_MQTT_READINGS_BURST: '1000000000',
  BULWARK_MQTT_BYTES_PER_SECOND: String(1024 ** 4),
  BULWARK_MQTT_BYTES_BURST: String(1024 ** 4),
  BULWARK_MQTT_CONNECTS_PER_SECOND: '100000',
  // It is cut off at every flipped frame or foreign topic, and comes straight back.
  BULWARK_MQTT_DEVICE_CONNECTS_PER_MINUTE: '60000',
  BULWARK_TELEMETRY_DAILY_READINGS_PER_DEVICE: '1000000000',
  BULWARK_TELEMETRY_DAILY_BYTES_PER_DEVICE: String(1024 ** 4),
  BULWARK_HTTP_RATE_LIMIT_PER_MINUTE: '1000000000',
  BULWARK_AUTH_LOGIN_RATE_LIMIT_PER_MINUTE: '1000000000',
});
let failed = false;
const fail = (why: string) => {
  failed = true;
  console.error(`FAIL: ${why}`);
};
let stopping = false;
server.child.once('exit', (code, signal) => stopping || fail(`the server exited (${code ?? signal})`));

// The well-behaved device: QoS 1 telemetry 20 times a second, each PUBACK timed.
const goodClient: MqttClient = await connectDevice(server.mqttPort, data.ca, good, good.id, { reconnectPeriod: 1000 });
const latencies: { phase: string; ms: number }[] = [];
let goodFailures = 0;
let phase = 'before';
const goodTimer = setInterval(() => {
  const started = performance.now();
  const at = phase;
  goodClient.publish(deviceTopic(good.id, TELEMETRY), JSON.stringify({ values: { t: 21.5 } }), { qos: 1 }, (error) => {
    if (error) goodFailures++;
    else latencies.push({ phase: at, ms: performance.now() - started });
  });
}, 50);

const memory: (string | number)[][] = [];
const noteMemory = (label: string) => {
  const m = server.memory();
  memory.push([label, m.rss / MB, m.peak / MB]);
  return m.rss;
};
await settle(5000);
const rssBefore = noteMemory('before the fuzz (after 5 s of the good device)');

// ---- MQTT ----
phase = 'mqtt';
const rand = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { numRuns: 1, seed: SEED })[0]!;
let state = rand || 1;
const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
const own = (suffix: string) => deviceTopic(fuzzer.id, suffix);
const topics = () =>
  pick([
    own(TELEMETRY),
    own('telemetry/cbor'),
    own('state/reported'),
    own('state/get'),
    own(`commands/${Math.floor(random() * 1000)}/result`),
    own('updates/status'),
    deviceTopic(good.id, TELEMETRY),
    '$SYS/broker/clients',
    '#',
    `d/${fuzzer.id}/${bytes(4).toString('latin1')}`,
    bytes(1 + Math.floor(random() * 40)).toString('latin1'),
    `${own(TELEMETRY)}/${'x/'.repeat(Math.floor(random() * 20))}`,
  ]);
const payloads = () =>
  pick([
    JSON.stringify({ values: { t: random() * 100 } }),
    JSON.stringify({ batch: Array.from({ length: 1 + Math.floor(random() * 50) }, () => ({ values: { a: random() } })) }),
    bytes(Math.floor(random() * 300)),
    JSON.stringify({ values: { ['__proto__']: 1, constructor: { prototype: 1 } } }),
    `{"values":{"t":${'9'.repeat(Math.floor(random() * 400))}}}`,
    '{"ts":' + Math.floor(random() * 2 ** 53) + ',"values":{"x":null}}',
    JSON.stringify({ reported: { a: random() }, version: Math.floor(random() * 100) }),
    '',
  ]);
let messageId = 1;
const nextId = () => (messageId = (messageId % 65535) + 1);
function fuzzPacket(): Packet {
  const roll = random();
  if (roll < 0.7)
    return {
      cmd: 'publish',
      topic: topics(),
      payload: payloads(),
      qos: pick([0, 1, 1] as const),
      retain: random() < 0.05,
      dup: random() < 0.05,
      messageId: nextId(),
    } as Packet;
  if (roll < 0.8)
    return { cmd: 'subscribe', messageId: nextId(), subscriptions: [{ topic: topics(), qos: pick([0, 1, 2] as const) }] } as Packet;
  if (roll < 0.85) return { cmd: 'unsubscribe', messageId: nextId(), unsubscriptions: [topics()] } as Packet;
  if (roll < 0.92) return { cmd: 'puback', messageId: nextId() } as Packet;
  return { cmd: 'pingreq' } as Packet;
}
const encode = (packet: Packet) => mqttPacket.generate(packet, { protocolVersion: 4 });

let sent = 0;
let connections = 0;
let refusedConnects = 0;
const mqttStarted = performance.now();
while (sent < PACKETS && !failed) {
  connections++;
  const raw = await RawMqtt.open(server.mqttPort, data.ca, fuzzer).catch(() => null);
  if (!raw) {
    refusedConnects++;
    await settle(50);
    continue;
  }
  if (connections % 1000 === 0) {
    // A mutated CONNECT: flipped bytes in a good one.
    const connect = encode(raw.connectPacket(fuzzer.id));
    for (let i = 0; i < 3; i++) connect[Math.floor(random() * connect.length)] = Math.floor(random() * 256);
    raw.socket.write(connect);
    sent++;
    await raw.closedWithin(2000);
    raw.close();
    continue;
  }
  raw.send(raw.connectPacket(fuzzer.id));
  const connack = await raw.next('connack', 5000).catch(() => null);
  if (!connack || (connack as { returnCode?: number }).returnCode) {
    refusedConnects++;
    raw.close();
    await settle(50);
    continue;
  }
  while (!raw.isClosed && sent < PACKETS) {
    const frames: Buffer[] = [];
    for (let i = 0; i < 200 && sent < PACKETS; i++, sent++) {
      const frame = encode(fuzzPacket());
      if (random() < 0.002) for (let f = 0; f < 2; f++) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
      frames.push(frame);
    }
    raw.received.length = 0;
    if (!raw.socket.write(Buffer.concat(frames)))
      await Promise.race([new Promise((resolve) => raw.socket.once('drain', resolve)), raw.closed, settle(10_000)]);
  }
  raw.close();
}
const mqttSeconds = (performance.now() - mqttStarted) / 1000;
noteMemory(`after ${sent.toLocaleString()} MQTT packets`);

// ---- HTTP ----
phase = 'http';
const client = new HttpClient(`https://localhost:${server.httpsPort}`, data.ca);
const { token } = await firstSignIn(client, data.org, data.owner, () => Date.now());
const operations = bodyOperations((await client.get('/api/openapi.json')).body);
const statuses = new Map<number, number>();
const badAnswers: string[] = [];
const agent = new https.Agent({ ca: data.ca, keepAlive: true, maxSockets: 16 });
const post = (op: (typeof operations)[0], body: string) =>
  new Promise<void>((resolve) => {
    const req = https.request(
      {
        host: 'localhost',
        port: server.httpsPort,
        path: op.url,
        method: op.method,
        agent,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = null;
          }
          if (!answeredWell(status, parsed) && badAnswers.length < 20)
            badAnswers.push(`${op.method} ${op.path} ${body.slice(0, 160)} → ${status}`);
          resolve();
        });
      },
    );
    req.on('error', () => {
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
      resolve();
    });
    req.end(body);
  });
const httpStarted = performance.now();
const perRoute = Math.ceil(BODIES / operations.length);
let bodiesSent = 0;
for (const [i, op] of operations.entries()) {
  if (failed) break;
  const generator = fuzzBody(op);
  for (let done = 0; done < perRoute && bodiesSent < BODIES; done += 256) {
    const batch = fc.sample(generator, { numRuns: Math.min(256, perRoute - done, BODIES - bodiesSent), seed: SEED + i * 7919 + done });
    bodiesSent += batch.length;
    // 16 at a time.
    for (let j = 0; j < batch.length; j += 16) await Promise.all(batch.slice(j, j + 16).map((b) => post(op, JSON.stringify(b) ?? 'null')));
  }
}
const httpSeconds = (performance.now() - httpStarted) / 1000;
noteMemory(`after ${bodiesSent.toLocaleString()} HTTP bodies`);

phase = 'after';
await settle(10_000);
const rssAfter = noteMemory('after a 10 s settle');
clearInterval(goodTimer);
await settle(1000);
goodClient.end(true);
const healthy = (await client.get('/healthz').catch(() => ({ status: 0 }))).status === 200;
stopping = true;
const code = await server.stop();
agent.destroy();
client.close();
data.remove();

const p = (which: string, q: number) => {
  const ms = latencies
    .filter((l) => l.phase === which)
    .map((l) => l.ms)
    .sort((a, b) => a - b);
  return ms.length ? ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! : Number.NaN;
};
console.log(`\nFuzz run, seed ${SEED}; ${machine()}`);
console.log(
  `MQTT: ${sent.toLocaleString()} packets in ${mqttSeconds.toFixed(0)} s (${Math.round(sent / mqttSeconds).toLocaleString()}/s) over ${connections.toLocaleString()} connections (${refusedConnects} refused)`,
);
console.log(
  `HTTP: ${bodiesSent.toLocaleString()} bodies to ${operations.length} routes in ${httpSeconds.toFixed(0)} s (${Math.round(bodiesSent / httpSeconds).toLocaleString()}/s): ${[
    ...statuses,
  ]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s || 'error'}: ${n}`)
    .join(', ')}`,
);
table(['server memory', 'RSS MB', 'peak MB'], memory);
table(
  ['well-behaved device PUBACK', 'p50 ms', 'p99 ms', 'messages'],
  ['before', 'mqtt', 'http'].map((w) => [
    w === 'before' ? 'before the fuzz (baseline)' : `during the ${w.toUpperCase()} fuzz`,
    p(w, 0.5),
    p(w, 0.99),
    latencies.filter((l) => l.phase === w).length,
  ]),
);
console.log(
  `p99 during the MQTT fuzz / baseline: ${(p('mqtt', 0.99) / p('before', 0.99)).toFixed(1)}x; good-device failures: ${goodFailures}`,
);
if (goodFailures > 0) fail(`the well-behaved device lost ${goodFailures} messages`);
if (badAnswers.length) fail(`answers without the error shape or 5xx:\n  ${badAnswers.join('\n  ')}`);
if ((rssAfter - rssBefore) / MB > LEAK_MB) fail(`server RSS grew ${((rssAfter - rssBefore) / MB).toFixed(0)} MB (bound ${LEAK_MB} MB)`);
if (!healthy) fail('/healthz did not answer 200 after the fuzz');
if (code !== 0) fail(`the server exited with ${code} on SIGTERM`);
console.log(failed ? 'FUZZ FAILED' : 'fuzz passed: no crash, no 5xx, memory within the bound, the well-behaved device unaffected');
process.exit(failed ? 1 : 0);
