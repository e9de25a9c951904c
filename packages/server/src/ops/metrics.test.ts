import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { ENGINES } from '../testing/engines.js';
import { eventually } from '../testing/mqtt.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { newScrapeToken } from './scrape-token.js';
import { LOG_GENERATION_ROWS } from '../telemetry/log-mover.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

/** The value of the sample of `metric` whose labels include every one of `labels`, or undefined. */
function sample(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const found = Object.entries(labels).every(([name, value]) => line.includes(`${name}="${value}"`));
    if (found) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('Prometheus metrics', () => {
  let t: TestPlatform;
  const { token, tokenHash } = newScrapeToken();
  before(async () => {
    t = await startTestPlatform(sqlite, { metrics: { tokenHash }, mqtt: { port: 0, plainPort: 0 } });
  });
  after(() => t?.close());

  const scrape = async () => {
    const res = await t.client().get('/metrics', { token });
    assert.equal(res.status, 200, res.text);
    return res.text;
  };

  it('refuses /metrics without the scrape token, with another token or a malformed header (401, error body)', async () => {
    const client = t.client();
    const answers = [
      await client.get('/metrics'),
      await client.get('/metrics', { token: newScrapeToken().token }),
      await client.get('/metrics', { token: 'bwm_short' }),
      await client.get('/metrics', { headers: { authorization: token } }),
    ];
    for (const res of answers) {
      assert.equal(res.status, 401, res.text);
      assert.equal(res.body.error.code, 'auth.unauthenticated');
      assert.doesNotMatch(res.text, /bulwark_/);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
  });

  it('refuses every scrape when no token is configured: there is no default token', async () => {
    const bare = await startTestPlatform(sqlite);
    try {
      for (const presented of [undefined, token, '']) {
        const res = await bare.client().get('/metrics', presented === undefined ? {} : { token: presented });
        assert.equal(res.status, 401, res.text);
        assert.match(res.body.error.message, /bulwark admin metrics-token/);
      }
    } finally {
      await bare.close();
    }
  });

  it('counts a burst of 401s on an API route under its route pattern, and unmatched paths under one label', async () => {
    const client = t.client();
    const burst = 25;
    const statuses = await Promise.all(Array.from({ length: burst }, () => client.get('/api/v1/users').then((r) => r.status)));
    assert.deepEqual(new Set(statuses), new Set([401]));
    const device = randomUUID();
    assert.equal((await client.get(`/api/v1/devices/${device}`)).status, 401);
    assert.equal((await client.get('/api/v1/secret-probe-4711')).status, 404);
    assert.equal((await client.get(`/api/v1/devices/${'x'.repeat(150)}`)).status, 414);
    assert.equal((await client.get(`/tuf/${randomUUID()}/metadata/1.root.json`)).status, 404);

    const text = await scrape();
    const count = 'bulwark_http_request_duration_seconds_count';
    assert.ok((sample(text, count, { method: 'GET', route: '/api/v1/users', status: '401' }) ?? 0) >= burst, text);
    assert.equal(sample(text, count, { method: 'GET', route: '/api/v1/devices/:id', status: '401' }), 1);
    assert.ok((sample(text, count, { route: 'unmatched', status: '404' }) ?? 0) >= 1);
    assert.equal(sample(text, count, { route: 'unmatched', status: '414' }), 1);
    assert.equal(sample(text, count, { method: 'GET', route: '/tuf/:organizationId/metadata/:file', status: '404' }), 1);
    assert.ok(!text.includes(device) && !text.includes('secret-probe') && !text.includes('xxxx'), 'raw URLs never become labels');
  });

  it('does not name the exact Node version', async () => {
    const text = await scrape();
    assert.doesNotMatch(text, /nodejs_version_info/);
    assert.ok(!text.includes(process.version) && !text.includes(process.versions.node), 'the Node version is not in the body');
    assert.match(text, /bulwark_process_cpu_seconds_total/);
  });

  it("exposes the SQLite telemetry log's waiting rows and its moves, so a log that keeps growing shows", async () => {
    const store = t.platform.telemetry.store;
    const mover = store.logMover!;
    const before = await scrape();
    const movedBefore = sample(before, 'bulwark_telemetry_log_moves_total', { event: 'moved_rows' });
    assert.equal(typeof movedBefore, 'number');
    assert.equal(sample(before, 'bulwark_telemetry_log_moves_total', { event: 'failures' }), 0);
    const rows = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => ({
        organization_id: 'org-metrics',
        device_id: `${(from + i).toString(16).padStart(8, '0')}-metrics`,
        ts: 1_764_000_000_000 + from + i,
        received_at: 1,
        data: '{"v":1}',
      }));
    await store.insertBatch(rows(LOG_GENERATION_ROWS - 1, 0)); // counted, not yet a generation
    await mover.settled();
    assert.equal(sample(await scrape(), 'bulwark_telemetry_log_rows', {}) ?? Number.NaN, LOG_GENERATION_ROWS - 1);
    await store.insertBatch(rows(2, LOG_GENERATION_ROWS)); // a generation: moved
    await mover.settled();
    const text = await scrape();
    assert.equal(sample(text, 'bulwark_telemetry_log_rows', {}), 0);
    assert.equal(sample(text, 'bulwark_telemetry_log_moves_total', { event: 'moved_rows' }), movedBefore! + LOG_GENERATION_ROWS + 1);
    assert.ok(sample(text, 'bulwark_telemetry_log_moves_total', { event: 'generations' })! >= 1);
    assert.ok(sample(text, 'bulwark_telemetry_log_longest_slice_seconds', {})! > 0);
  });

  it("exposes the MQTT gateway's counters, read when scraped, every field of its stats included", async () => {
    const before = sample(await scrape(), 'bulwark_mqtt_events_total', { event: 'auth_failures' });
    assert.equal(typeof before, 'number');
    // A real authentication failure: a token device with a made-up token on the plain listener.
    const client = mqtt.connect(`mqtt://127.0.0.1:${t.server.mqtt!.plainListenerPort}`, {
      clientId: randomUUID(),
      username: 'nobody',
      password: 'not a token',
      reconnectPeriod: 0,
    });
    client.on('error', () => undefined);
    await eventually(() => t.server.mqtt!.stats.authFailures > before!, 5000, 'the gateway counted the failure');
    client.end(true);
    const text = await scrape();
    assert.equal(sample(text, 'bulwark_mqtt_events_total', { event: 'auth_failures' }), t.server.mqtt!.stats.authFailures);
    for (const field of Object.keys(t.server.mqtt!.stats)) {
      const event = field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
      assert.equal(typeof sample(text, 'bulwark_mqtt_events_total', { event }), 'number', `${event} is exposed`);
    }
  });
});
