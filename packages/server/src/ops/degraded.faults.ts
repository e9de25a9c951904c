/**
 * A node whose PostgreSQL or Redis goes away (issue 17, failure scenarios). The node reaches both
 * through TCP relays this test controls (testing/network-fault.ts), so cutting them never stops
 * the shared servers other test files use. The safe outcome, each asserted: readiness false while
 * degraded, clear answers (503 `storage.unavailable`, CONNACK "server unavailable" so devices
 * retry rather than give up), no QoS 1 message acknowledged while it cannot be stored, no crash,
 * and everything back, nothing acknowledged lost, once the dependency returns.
 *
 * Slow (waits on reconnections): run by `npm run test:faults`, not `npm test`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { openDatabase } from '../storage/database.js';
import { ENGINES, PG_URL, type EngineUnderTest } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { eventually, settle } from '../testing/mqtt.js';
import { NetworkFault } from '../testing/network-fault.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const REDIS_URL = new URL(process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/9');
const postgres = ENGINES.find((e) => e.engine === 'postgres')!;

const redisProblem = await new Promise<string | false>((resolve) => {
  const socket = tcpConnect({ host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
  socket.setTimeout(3000, () => (socket.destroy(), resolve('timeout')));
  socket.once('error', (error) => resolve(error.message));
  socket.once('connect', () => (socket.end(), resolve(false)));
});
if (redisProblem && process.env.CI === 'true') throw new Error(`Redis at ${REDIS_URL.href} is unreachable (${redisProblem})`);

/** The PostgreSQL engine, with the node's connections going through `fault` (migrations run direct). */
function throughRelay(fault: NetworkFault, port: () => number): EngineUnderTest {
  return {
    ...postgres,
    async create() {
      const direct = await postgres.create();
      const url = new URL(direct.url);
      url.port = String(port());
      const handle = openDatabase({ url: url.toString(), dataDir: direct.dataDir, poolSize: 5 });
      return {
        ...handle,
        url: url.toString(),
        dataDir: direct.dataDir,
        close: async () => {
          fault.restore();
          await handle.close();
          await direct.close();
        },
      };
    },
  };
}

describe('a node whose PostgreSQL or Redis goes away', { skip: postgres.skip || redisProblem || false }, () => {
  const pgFault = new NetworkFault(Number(new URL(PG_URL).port || 5432));
  const redisFault = new NetworkFault(Number(REDIS_URL.port || 6379));
  let pgPort = 0;
  let t: TestPlatform;
  let token: string;
  const devices: TestDevice[] = [];
  const clients: MqttClient[] = [];

  before(async () => {
    pgPort = await pgFault.listen();
    const redisPort = await redisFault.listen();
    t = await startTestPlatform(
      throughRelay(pgFault, () => pgPort),
      {
        mqtt: { port: 0, redisUrl: `redis://127.0.0.1:${redisPort}${REDIS_URL.pathname}`, watchIntervalMs: 100 },
      },
    );
    const org = await organizationIdOf(t.platform, t.org);
    const product = await testProduct(t.platform, org);
    for (let i = 0; i < 3; i++) devices.push(await provisionTestDevice(t.platform, org, product, `DEGRADED-${i}`));
    ({ token } = await ownerSession(t));
  });

  after(async () => {
    for (const c of clients) c.end(true);
    pgFault.restore();
    redisFault.restore();
    await t?.close();
    await pgFault.close();
    await redisFault.close();
  });

  /** A device as a firmware would run it: mqtt.js reconnecting by itself and resending unacknowledged QoS 1 messages. */
  async function device(d: TestDevice, protocolVersion: 4 | 5 = 4): Promise<{ client: MqttClient; connackCodes: number[] }> {
    const connackCodes: number[] = [];
    const client = mqtt.connect(`mqtts://localhost:${t.server.mqtt!.port}`, {
      clientId: d.id,
      ca: t.ca,
      key: d.key,
      cert: d.cert,
      protocolVersion,
      reconnectPeriod: 250,
      reconnectOnConnackError: true,
      connectTimeout: 5000,
    });
    client.on('error', (error) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'number') connackCodes.push(code);
    });
    clients.push(client);
    await new Promise((resolve) => client.once('connect', resolve));
    return { client, connackCodes };
  }

  async function stored(deviceId: string): Promise<number[]> {
    const rows = await t.platform.telemetry.store.range(deviceId, 0, Number.MAX_SAFE_INTEGER, 1000);
    return rows.map((r) => (JSON.parse(r.data) as { n: number }).n).sort((a, b) => a - b);
  }

  it(
    'PostgreSQL cut: not ready, 503 storage.unavailable, nothing acknowledged, devices told to retry; all back after, nothing lost',
    { timeout: 90_000 },
    async () => {
      const [d, d5] = [devices[0]!, devices[2]!];
      const { client, connackCodes } = await device(d);
      const { client: client5 } = await device(d5, 5);
      await client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { n: 1 } }), { qos: 1 });
      const api = t.client();

      pgFault.cut();
      const ready = await api.get('/readyz');
      assert.equal(ready.status, 503, ready.text);
      assert.equal(ready.body.checks.database, false);
      assert.equal(ready.body.checks.redis, true);
      const listed = await api.get('/api/v1/devices', { token });
      assert.equal(listed.status, 503, listed.text);
      assert.equal(listed.body.error.code, 'storage.unavailable');
      assert.equal(listed.headers['retry-after'], '5');

      let acked = 0;
      const second = client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { n: 2 } }), { qos: 1 }).then(() => acked++);
      // MQTT 5: not a PUBACK with an error code either (a client drops a message so refused), but the session ended.
      const second5 = client5.publishAsync(`d/${d5.id}/telemetry`, JSON.stringify({ values: { n: 2 } }), { qos: 1 }).then(() => acked++);
      await settle(2500);
      assert.equal(acked, 0, 'no PUBACK while the database is unreachable');
      await eventually(() => connackCodes.includes(3), 5000, 'a reconnection answered CONNACK 3 (server unavailable)');
      assert.ok(!connackCodes.includes(5) && !connackCodes.includes(4), `final refusals seen: ${connackCodes.join(', ')}`);
      assert.ok(t.server.mqtt!.stats.connectsUnavailable > 0);

      pgFault.restore();
      await eventually(async () => (await api.get('/readyz')).status === 200, 15_000, 'ready again');
      await Promise.all([second, second5]);
      assert.equal((await api.get('/api/v1/devices', { token })).status, 200);
      assert.deepEqual([...new Set(await stored(d.id))], [1, 2], 'the message acknowledged after recovery is stored, the one before too');
      assert.deepEqual([...new Set(await stored(d5.id))], [2]);
      assert.ok(t.server.mqtt!.stats.storageDisconnects >= 2);
    },
  );

  it(
    'Redis cut: not ready, the API and the database keep serving, telemetry waits; all back after, nothing lost',
    { timeout: 90_000 },
    async () => {
      const d = devices[1]!;
      const { client } = await device(d);
      await client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { n: 1 } }), { qos: 1 });
      const api = t.client();

      redisFault.cut();
      await eventually(async () => (await api.get('/readyz')).status === 503, 5000, 'unready');
      const ready = await api.get('/readyz');
      assert.deepEqual(ready.body.checks, { database: true, broker: true, redis: false });
      const shown = await api.get(`/api/v1/devices/${d.id}`, { token });
      assert.equal(shown.status, 200, shown.text);

      const sent = client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { n: 2 } }), { qos: 1 });
      await settle(1500);

      redisFault.restore();
      await eventually(async () => (await api.get('/readyz')).status === 200, 15_000, 'ready again');
      await sent;
      await client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { n: 3 } }), { qos: 1 });
      assert.deepEqual([...new Set(await stored(d.id))], [1, 2, 3]);
    },
  );
});
