/**
 * Node loss (issue 17, redundancy): two `bulwark serve` processes share one PostgreSQL database
 * and Redis; devices running the real SDK, given both nodes' addresses, send QoS 1 telemetry to
 * node A, which is killed with SIGKILL mid-stream. The devices must fail over to node B by
 * themselves, every message node A acknowledged must be in the database (and everything sent
 * after it too), and node B must carry on what node A did: commands, the daily telemetry quota
 * counted on A, and the credential watcher (a revocation drops the device's session on B).
 *
 * Slow (processes, a quota flush): run by `npm run test:faults`, not `npm test`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import {
  ENGINES,
  eventually,
  firstSignIn,
  HttpClient,
  organizationIdOf,
  provisionTestDevice,
  settle,
  startServerProcess,
  startTestPlatform,
  testProduct,
  type ServerProcess,
  type TestDevice,
  type TestPlatform,
} from '@bulwark/server/testing';
import type { ErrorReply } from '@bulwark/protocol';
import { DeviceClient } from './client.js';

const REDIS_URL = process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/9';
const DAILY_READINGS = 1000;
const QUOTA_FLUSH_MS = 5000;

async function redisProblem(): Promise<string | false> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379) });
    socket.setTimeout(3000, () => (socket.destroy(), resolve('timeout')));
    socket.once('error', (error) => resolve(error.message));
    socket.once('connect', () => (socket.end(), resolve(false)));
  });
}

const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
const problem = await redisProblem();
if (problem && process.env.CI === 'true')
  throw new Error(`Redis at ${REDIS_URL} is unreachable (${problem}) and CI=true makes it mandatory`);

describe('node loss: SIGKILL one of two nodes while devices send QoS 1 telemetry', { skip: postgres.skip || problem || false }, () => {
  let t: TestPlatform;
  let nodeA: ServerProcess;
  let nodeB: ServerProcess;
  let apiB: HttpClient;
  let token: string;
  /** An API key for the rotation: a session would need a step-up younger than sessions.stepUpMinutes by then. */
  let automationKey: string;
  const devices: TestDevice[] = [];
  const clients: DeviceClient[] = [];
  const urls = { a: '', b: '' };

  before(async () => {
    // The harness's own node only provisions and reads the database: no broker of its own.
    t = await startTestPlatform(postgres, { mqtt: { enabled: false } });
    const org = await organizationIdOf(t.platform, t.org);
    const product = await testProduct(t.platform, org);
    for (let i = 0; i < 5; i++) devices.push(await provisionTestDevice(t.platform, org, product, `FAILOVER-${i}`));
    const env = {
      BULWARK_DATABASE_URL: t.database.url,
      BULWARK_DATABASE_POOL_SIZE: '4',
      BULWARK_MQTT_REDIS_URL: REDIS_URL,
      BULWARK_MQTT_WATCH_INTERVAL_MS: '100',
      BULWARK_TELEMETRY_DAILY_READINGS_PER_DEVICE: String(DAILY_READINGS),
      BULWARK_LOG_LEVEL: 'warn',
    };
    [nodeA, nodeB] = await Promise.all([
      startServerProcess(t.database.dataDir, t.ca, env, 180_000),
      startServerProcess(t.database.dataDir, t.ca, env, 180_000),
    ]);
    urls.a = `mqtts://localhost:${nodeA.mqttPort}`;
    urls.b = `mqtts://localhost:${nodeB.mqttPort}`;
    apiB = new HttpClient(`https://localhost:${nodeB.httpsPort}`, t.ca);
    ({ token } = await firstSignIn(apiB, t.org, t.owner, () => Date.now()));
    const key = await apiB.post('/api/v1/me/api-keys', { name: 'failover', scopes: ['devices:write'], expiresInDays: 1 }, { token });
    assert.equal(key.status, 201, key.text);
    automationKey = key.body.secret;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    apiB?.close();
    nodeA?.child.kill('SIGKILL');
    await nodeB?.stop();
    await t?.close();
  });

  function deviceClient(d: TestDevice): DeviceClient {
    const client = new DeviceClient({
      brokerUrl: [urls.a, urls.b],
      deviceId: d.id,
      ca: t.ca,
      credentials: { type: 'certificate', key: d.key, cert: d.cert },
      backoff: { baseMs: 100, capMs: 500 },
    });
    client.on('handlerError', () => undefined);
    client.on('error', () => undefined); // a final refusal, read from client.failure
    clients.push(client);
    return client;
  }

  async function storedValues(deviceId: string, key: string): Promise<number[]> {
    const rows = await t.platform.telemetry.store.range(deviceId, 0, Number.MAX_SAFE_INTEGER, 100_000);
    return rows.flatMap((r) => {
      const value = (JSON.parse(r.data) as Record<string, unknown>)[key];
      return typeof value === 'number' ? [value] : [];
    });
  }

  const streaming = devices; // devices[0..2] stream; [3] is the quota device; [4] is revoked
  let quota: DeviceClient;
  let revoked: DeviceClient;
  const replies: ErrorReply[] = [];

  it('devices fail over to node B by themselves, and every message node A acknowledged is stored', async () => {
    const streamers = streaming.slice(0, 3).map((d) => ({ d, client: deviceClient(d), sent: 0, acked: [] as number[] }));
    quota = deviceClient(devices[3]!);
    quota.on('errorReply', (reply: ErrorReply) => replies.push(reply));
    revoked = deviceClient(devices[4]!);
    for (const s of streamers) {
      s.client.onCommand('whereami', () => ({ status: 'ok', result: { brokerUrl: s.client.brokerUrl } }));
      s.client.on('acked', (m: { topic: string; payload: string }) => {
        const n = (JSON.parse(m.payload) as { values?: { n?: number } }).values?.n;
        if (m.topic === 'telemetry' && n !== undefined) s.acked.push(n);
      });
    }
    await Promise.all(clients.map((c) => c.connect()));
    for (const c of clients) assert.equal(c.brokerUrl, urls.a, 'every device starts on node A');

    // The quota device spends 600 of its 1,000 readings on node A, before A's usage flush.
    quota.sendTelemetryBatch(Array.from({ length: 600 }, (_, i) => ({ values: { q: i } })));
    await quota.drained(10_000);

    const timer = setInterval(() => {
      for (const s of streamers) s.client.sendTelemetry({ n: s.sent++ });
    }, 25);
    try {
      await settle(QUOTA_FLUSH_MS + 700);
      const ackedBeforeKill = streamers.map((s) => s.acked.length);
      nodeA.child.kill('SIGKILL');
      const killed = Date.now();
      await eventually(() => clients.every((c) => c.isConnected && c.brokerUrl === urls.b), 15_000, 'every device on node B');
      console.log(`failover: every device reconnected to node B ${Date.now() - killed} ms after the SIGKILL`);
      assert.ok(
        ackedBeforeKill.every((n) => n > 50),
        `node A acknowledged ${ackedBeforeKill.join(', ')} messages`,
      );
      await settle(1000);
    } finally {
      clearInterval(timer);
    }
    await Promise.all(streamers.map((s) => s.client.drained(20_000)));

    for (const s of streamers) {
      const stored = await storedValues(s.d.id, 'n');
      const distinct = new Set(stored);
      const lost = s.acked.filter((n) => !distinct.has(n));
      assert.deepEqual(lost, [], `acknowledged but not stored for ${s.d.serial}`);
      assert.equal(distinct.size, s.sent, `every message sent is stored once the queue drained (${s.sent} sent)`);
      console.log(`${s.d.serial}: ${s.sent} sent, ${s.acked.length} acknowledged, ${stored.length - distinct.size} stored twice`);
    }
  });

  it('a command sent through node B after the loss reaches the device there', async () => {
    const d = streaming[0]!;
    const sent = await apiB.post(`/api/v1/devices/${d.id}/commands`, { name: 'whereami' }, { token });
    assert.equal(sent.status, 202, sent.text);
    const done = await apiB.get(`/api/v1/devices/${d.id}/commands/${sent.body.id}?waitMs=5000`, { token });
    assert.equal(done.body.status, 'succeeded', done.text);
    assert.deepEqual(done.body.result, { brokerUrl: urls.b });
  });

  it('the daily quota node A counted holds on node B: 300 more readings pass, the next 300 are refused', async () => {
    quota.sendTelemetryBatch(Array.from({ length: 300 }, (_, i) => ({ values: { q: 600 + i } })));
    quota.sendTelemetryBatch(Array.from({ length: 300 }, (_, i) => ({ values: { q: 900 + i } })));
    await quota.drained(10_000);
    await eventually(() => replies.some((r) => r.code === 'telemetry.quota_exceeded'), 5000, 'telemetry.quota_exceeded');
    assert.equal(new Set(await storedValues(devices[3]!.id, 'q')).size, 900);
  });

  it('a certificate revoked through node B drops the device’s session on node B within a second, and it stays out', async () => {
    const d = devices[4]!;
    assert.equal(revoked.brokerUrl, urls.b);
    const dropped = new Promise<number>((resolve) => revoked.once('disconnected', () => resolve(Date.now())));
    const started = Date.now();
    const rotated = await apiB.post(`/api/v1/devices/${d.id}/credentials/rotate`, { reason: 'keyCompromise' }, { token: automationKey });
    assert.equal(rotated.status, 200, rotated.text);
    const at = await dropped;
    assert.ok(at - started < 1500, `dropped ${at - started} ms after the revocation`);
    await eventually(() => revoked.failure !== null, 5000, 'the reconnection refused');
    assert.equal(revoked.failure!.code, 'mqtt.connack_5', 'node B refuses the revoked certificate at CONNECT');
    assert.equal(revoked.isConnected, false);
  });
});
