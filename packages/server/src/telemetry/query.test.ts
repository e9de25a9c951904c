import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { cliActor } from '../accounts/roles.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { TelemetryWriter } from './ingest.js';
import type { TelemetryRow } from './store.js';

const ORG_B = 'org-b';
const HOUR = 3_600_000;

interface Reading {
  ts: string;
  receivedAt: string;
  values: Record<string, unknown>;
}

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

for (const engine of ENGINES) {
  describe(`telemetry query API [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let tokenB: string;
    let org: string;
    let product: string;
    let writer: TelemetryWriter;
    let mqttDevice: TestDevice;
    let serial = 0;

    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 10_000 } });
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      // Before the sign-ins move the platform clock ahead: TLS checks the certificate against real time.
      mqttDevice = await provisionTestDevice(t.platform, org, product, 'TQ-MQTT');
      token = (await ownerSession(t)).token;
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      writer = new TelemetryWriter(t.platform.telemetry.store);
    });
    after(() => t?.close());

    const device = async () =>
      (await t.platform.devices.service.register(cliActor(org, 'test'), { serial: `TQ-${++serial}`, productId: product })).id;
    const row = (deviceId: string, ts: number, values: Record<string, unknown>): TelemetryRow => ({
      organization_id: org,
      device_id: deviceId,
      ts,
      received_at: t.clock.now(),
      data: JSON.stringify(values),
    });
    const get = (path: string, as = token) => t.client().get(path, { token: as });

    it('pages a range in time order without gaps or duplicates, page boundaries inside runs of equal timestamps', async () => {
      const id = await device();
      const base = Date.UTC(2026, 0, 1);
      // 250 readings, seven to a millisecond, written in shuffled batches: equal timestamps span page ends.
      const rows = Array.from({ length: 250 }, (_, i) => row(id, base + Math.floor(i / 7) * 1000, { i }));
      const next = random(7);
      rows.sort(() => next() - 0.5);
      for (let i = 0; i < rows.length; i += 40) await writer.write(rows.slice(i, i + 40));

      const from = new Date(base + 5000).toISOString();
      const to = base + 30_000;
      const seen: number[] = [];
      let lastTs = 0;
      let cursor: string | null = null;
      let pages = 0;
      do {
        const response = await get(`/api/v1/devices/${id}/telemetry?from=${from}&to=${to}&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(response.status, 200, response.text);
        for (const reading of response.body.readings as Reading[]) {
          const ts = Date.parse(reading.ts);
          assert.ok(ts >= lastTs, 'oldest first');
          lastTs = ts;
          seen.push(reading.values.i as number);
        }
        cursor = response.body.nextCursor;
        pages++;
      } while (cursor);
      // from is inclusive (reading 35 is at +5 s), to exclusive (reading 210 is at +30 s).
      const expected = Array.from({ length: 210 - 35 }, (_, k) => k + 35);
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        expected,
        'every reading of the range exactly once',
      );
      assert.equal(pages, 18);

      const all = await get(`/api/v1/devices/${id}/telemetry?from=${base}&limit=10000`);
      assert.equal(all.body.readings.length, 250);
      assert.equal(all.body.nextCursor, null);
    });

    it('downsamples into buckets with the same numbers as computed here, and keeps strings strings', async () => {
      const id = await device();
      const base = Date.UTC(2026, 1, 1, 9);
      const next = random(42);
      const rows: TelemetryRow[] = [];
      const expected = new Map<number, { t: number[]; door: { ts: number; value: unknown } | null; doorCount: number }>();
      for (let i = 0; i < 600; i++) {
        const ts = base + Math.floor(next() * 3 * HOUR);
        const values: Record<string, unknown> = { t: Math.round((next() * 60 - 20) * 1000) / 1000 };
        const bucket = Math.floor(ts / HOUR) * HOUR;
        const e = expected.get(bucket) ?? { t: [], door: null, doorCount: 0 };
        e.t.push(values.t as number);
        if (i % 5 === 0) {
          // Distinct timestamps for the non-numeric value, so "last" has one right answer.
          const doorTs = base + i * 17_000 + 1;
          const value = ['open', 'closed', '42', true, null][i % 4];
          rows.push(row(id, doorTs, { door: value }));
          const d = expected.get(Math.floor(doorTs / HOUR) * HOUR) ?? { t: [], door: null, doorCount: 0 };
          d.doorCount++;
          if (!d.door || doorTs > d.door.ts) d.door = { ts: doorTs, value };
          expected.set(Math.floor(doorTs / HOUR) * HOUR, d);
        }
        expected.set(bucket, e);
        rows.push(row(id, ts, values));
      }
      await writer.write(rows);

      const response = await get(`/api/v1/devices/${id}/telemetry/aggregate?from=${base}&to=${base + 4 * HOUR}&interval=1h`);
      assert.equal(response.status, 200, response.text);
      assert.equal(response.body.intervalMs, HOUR);
      const buckets = [...expected.keys()].sort((a, b) => a - b);
      assert.deepEqual(
        response.body.buckets.map((b: { start: string }) => Date.parse(b.start)),
        buckets,
      );
      for (const bucket of response.body.buckets as {
        start: string;
        values: Record<string, { count: number; avg?: number; min?: number; max?: number; last?: unknown; lastAt?: string }>;
      }[]) {
        const e = expected.get(Date.parse(bucket.start))!;
        const t = bucket.values.t!;
        assert.equal(t.count, e.t.length);
        assert.ok(Math.abs(t.avg! - e.t.reduce((a, b) => a + b, 0) / e.t.length) < 1e-9, `avg ${t.avg}`);
        assert.equal(t.min, Math.min(...e.t));
        assert.equal(t.max, Math.max(...e.t));
        assert.equal(t.last, undefined);
        const door = bucket.values.door;
        if (!e.door) assert.equal(door, undefined);
        else assert.deepEqual(door, { count: e.doorCount, last: e.door.value, lastAt: new Date(e.door.ts).toISOString() });
      }

      const only = await get(`/api/v1/devices/${id}/telemetry/aggregate?from=${base}&to=${base + 4 * HOUR}&interval=30m&values=door`);
      assert.equal(only.status, 200, only.text);
      assert.ok(only.body.buckets.length > 0);
      assert.ok(only.body.buckets.every((b: { values: object }) => Object.keys(b.values).join() === 'door'));
    });

    it('refuses more than 10,000 buckets with telemetry.too_many_buckets, and bad ranges and intervals clearly', async () => {
      const id = await device();
      const day = Date.UTC(2026, 2, 1);
      const tooMany = await get(`/api/v1/devices/${id}/telemetry/aggregate?from=${day}&to=${day + 24 * HOUR}&interval=1s`);
      assert.equal(tooMany.status, 400, tooMany.text);
      assert.equal(tooMany.body.error.code, 'telemetry.too_many_buckets');
      assert.equal(tooMany.body.error.details.buckets, 86_400);
      const suggested = tooMany.body.error.details.smallestInterval as string;
      assert.equal(
        (await get(`/api/v1/devices/${id}/telemetry/aggregate?from=${day}&to=${day + 24 * HOUR}&interval=${suggested}`)).status,
        200,
        `the suggested ${suggested} fits`,
      );
      assert.equal((await get(`/api/v1/devices/${id}/telemetry/aggregate?from=${day}&to=${day + 24 * HOUR}&interval=9s`)).status, 200);

      const backwards = await get(`/api/v1/devices/${id}/telemetry?from=${day + 1}&to=${day}`);
      assert.equal(backwards.body.error.code, 'telemetry.invalid_range');
      for (const [query, field] of [
        ['from=yesterday', 'from'],
        ['to=2026-13-01T00:00:00Z', 'to'],
        ['cursor=bm9wZQ', 'cursor'],
        ['limit=10001', 'limit'],
      ] as const) {
        const bad = await get(`/api/v1/devices/${id}/telemetry?${query}`);
        assert.equal(bad.status, 400, query);
        assert.match(bad.body.error.message, new RegExp(field), query);
      }
      for (const query of ['interval=5x', 'interval=0m', 'interval=1m&values=a,b%20c', 'interval=400d']) {
        const bad = await get(`/api/v1/devices/${id}/telemetry/aggregate?${query}`);
        assert.equal(bad.status, 400, query);
        assert.equal(bad.body.error.code, 'request.invalid', query);
      }
      assert.equal((await get(`/api/v1/devices/${id}/telemetry?from=1&extra=1`)).status, 400, 'unknown query parameters are refused');
    });

    it('gives the latest value of each name with its time, including names only older readings carry', async () => {
      const id = await device();
      const base = Date.UTC(2026, 3, 1);
      await writer.write([
        row(id, base + 1000, { t: 1, mode: 'eco', fw: '1.0' }),
        row(id, base + 3000, { t: 3 }),
        row(id, base + 2000, { t: 2, mode: 'boost', ok: false }),
        row(id, base + 4000, { t: 4.25, ok: null }),
      ]);
      const response = await get(`/api/v1/devices/${id}/telemetry/latest`);
      assert.equal(response.status, 200, response.text);
      const at = (ms: number) => new Date(base + ms).toISOString();
      assert.deepEqual(response.body, {
        lookback: 10_000,
        values: {
          fw: { value: '1.0', ts: at(1000) },
          mode: { value: 'boost', ts: at(2000) },
          ok: { value: null, ts: at(4000) },
          t: { value: 4.25, ts: at(4000) },
        },
      });
      const empty = await get(`/api/v1/devices/${await device()}/telemetry/latest`);
      assert.deepEqual(empty.body.values, {});
    });

    it('attack: another organization’s device answers 404 exactly like an unknown one, on every route', async () => {
      const id = await device();
      await writer.write([row(id, Date.UTC(2026, 4, 1), { secret: 1 })]);
      for (const suffix of ['telemetry?from=0', 'telemetry/aggregate?from=0&interval=7d', 'telemetry/latest', 'presence']) {
        const foreign = await get(`/api/v1/devices/${id}/${suffix}`, tokenB);
        const unknown = await get(`/api/v1/devices/00000000-0000-0000-0000-000000000000/${suffix}`, tokenB);
        assert.equal(foreign.status, 404, suffix);
        assert.equal(foreign.body.error.code, unknown.body.error.code);
        assert.equal(foreign.body.error.message, unknown.body.error.message);
        assert.equal((await get(`/api/v1/devices/${id}/${suffix}`)).status, 200, `the owner's organization reads ${suffix}`);
      }
      assert.equal((await t.client().get(`/api/v1/devices/${id}/telemetry`)).status, 401);
    });

    it('a real device publishes over MQTT; its readings, latest values and presence come back through the API', async () => {
      const d = mqttDevice;
      assert.deepEqual((await get(`/api/v1/devices/${d.id}/presence`)).body, { online: false, since: null, node: null, protocol: null });
      const client = await mqtt.connectAsync(`mqtts://localhost:${t.server.mqtt!.port}`, {
        clientId: d.id,
        ca: t.ca,
        key: d.key,
        cert: d.cert,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      try {
        const now = t.clock.now();
        await client.publishAsync(
          `d/${d.id}/telemetry`,
          JSON.stringify({
            batch: [
              { ts: now - 2000, values: { temperature: 21.5, door: 'open' } },
              { ts: now - 1000, values: { temperature: 22 } },
            ],
          }),
          { qos: 1 },
        );
        const readings = await get(`/api/v1/devices/${d.id}/telemetry`);
        assert.deepEqual(
          readings.body.readings.map((r: Reading) => [Date.parse(r.ts), r.values]),
          [
            [now - 2000, { temperature: 21.5, door: 'open' }],
            [now - 1000, { temperature: 22 }],
          ],
        );
        const latest = await get(`/api/v1/devices/${d.id}/telemetry/latest`);
        assert.deepEqual(latest.body.values, {
          door: { value: 'open', ts: new Date(now - 2000).toISOString() },
          temperature: { value: 22, ts: new Date(now - 1000).toISOString() },
        });
        const presence = await get(`/api/v1/devices/${d.id}/presence`);
        assert.equal(presence.body.online, true, presence.text);
        assert.equal(presence.body.protocol, 'mqtts');
        assert.equal(typeof presence.body.node, 'string');
      } finally {
        await client.endAsync();
      }
    });
  });
}
