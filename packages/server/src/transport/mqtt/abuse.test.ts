/**
 * Promise 9 under attack: one enrolled device does its worst with its own valid certificate
 * (testing/abusive-device.ts: subscriptions, a QoS 2 will, QoS 2 publishes, oversized batches,
 * pipelined packets, takeovers), and a second one subscribes to its own topics and stops reading
 * while it publishes readings routed back to it (the slow consumer, testing/abusive-device.ts
 * `stalledSubscriber`), for BULWARK_ABUSE_SECONDS (default 60) while 100 well-behaved
 * devices each send QoS 1 telemetry once a second, against a node in its own process
 * (`bulwark serve`, SQLite, default limits), so its memory is measured apart from the clients:
 *   - the node stays up, and answers /healthz throughout;
 *   - its resident memory never rises more than RSS_GROWTH_BOUND above its level with the fleet
 *     connected and sending (peak from the kernel's high-water mark);
 *   - the well-behaved devices' PUBACK p99 stays under P99_BOUND_MS, and none of theirs fails.
 * The figures are printed for the record. In a whole run this file runs after the others, alone
 * (scripts/test.mjs): beside the run's longest files its p99 measured them (124–1,009 ms, against 5 ms alone).
 */
// bulwark-test: alone
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { MqttClient } from 'mqtt';
import { AbusiveDevice, stalledSubscriber } from '../../testing/abusive-device.js';
import type { TestDevice } from '../../testing/devices.js';
import { connectDevice, settle } from '../../testing/mqtt.js';
import { prepareDataDir, startServerProcess, type ServerProcess } from '../../testing/server-process.js';
import { defaultConfig } from '../../ops/config.js';

const SECONDS = Number(process.env.BULWARK_ABUSE_SECONDS ?? 60);
const FLEET = 100;
const MB = 1024 * 1024;
/** Bounds that hold on a loaded two-core machine (measured: see the printed figures). */
const RSS_GROWTH_BOUND = 100 * MB;
const P99_BOUND_MS = 1000;

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

/** How long /healthz took to answer (ms), or the error. */
function healthz(port: number, ca: string): Promise<number | string> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = https.get({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : `status ${res.statusCode}`));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => resolve(error.message));
  });
}

describe('one device doing its worst while 100 others send telemetry [sqlite, server in its own process]', () => {
  let data: Awaited<ReturnType<typeof prepareDataDir>>;
  let server: ServerProcess;
  const clients: MqttClient[] = [];

  before(async () => {
    data = await prepareDataDir(FLEET + 2, 'AB');
    server = await startServerProcess(data.dataDir, data.ca, { BULWARK_LOG_LEVEL: 'warn' });
  });
  after(async () => {
    for (const client of clients) client.end(true);
    await server?.stop();
    data?.remove();
  });

  it(`the node stays up, its memory bounded, and the fleet's PUBACKs timely (${SECONDS} s)`, async () => {
    const [attacker, consumer, ...fleet] = data.devices as [TestDevice, TestDevice, ...TestDevice[]];
    for (let i = 0; i < fleet.length; i += 10) {
      clients.push(
        ...(await Promise.all(
          fleet.slice(i, i + 10).map((d) => connectDevice(server.mqttPort, data.ca, d, d.id, { connectTimeout: 30_000 })),
        )),
      );
    }
    const latencies: number[] = [];
    const failures: string[] = [];
    /** Each device sends one QoS 1 reading a second until `until`, each timed to its PUBACK. */
    const send = (until: number, record: boolean) =>
      Promise.all(
        clients.map(async (client, i) => {
          const d = fleet[i]!;
          await settle((i * 1000) / clients.length);
          while (Date.now() < until) {
            const started = performance.now();
            try {
              await client.publishAsync(
                `d/${d.id}/telemetry`,
                JSON.stringify({ values: { temperature: 20 + (i % 10), n: latencies.length } }),
                { qos: 1 },
              );
              if (record) latencies.push(performance.now() - started);
            } catch (error) {
              failures.push((error as Error).message);
            }
            await settle(Math.max(0, 1000 - (performance.now() - started)));
          }
        }),
      );

    await send(Date.now() + 5000, false); // warm-up: the fleet connected and sending
    const baseline = server.memory();
    let peakSampled = baseline.rss;
    const sampling = setInterval(() => (peakSampled = Math.max(peakSampled, server.memory().rss)), 250);
    const health: (number | string)[] = [];
    const probing = setInterval(() => void healthz(server.httpsPort, data.ca).then((r) => health.push(r)), 2000);
    const logLinesBefore = server.logLines();

    const until = Date.now() + SECONDS * 1000;
    const limits = defaultConfig('.').mqtt;
    const abuse = new AbusiveDevice(server.mqttPort, data.ca, attacker, limits);
    const [report, stall] = await Promise.all([
      abuse.run(until),
      stalledSubscriber(server.mqttPort, data.ca, consumer, until, limits.publishesPerSecond * 0.9),
      send(until, true),
    ]);
    clearInterval(sampling);
    clearInterval(probing);
    await settle(1000);
    const afterwards = server.memory();

    latencies.sort((a, b) => a - b);
    const healthFailures = health.filter((h) => typeof h === 'string');
    const healthTimes = health.filter((h): h is number => typeof h === 'number');
    console.log(
      `abuse ${SECONDS} s: server RSS ${(baseline.rss / MB).toFixed(0)} MB with the fleet connected → ${(afterwards.rss / MB).toFixed(0)} MB after; ` +
        `peak ${(Math.max(peakSampled, afterwards.peak) / MB).toFixed(0)} MB (sampled ${(peakSampled / MB).toFixed(0)} MB, kernel high-water mark ${(afterwards.peak / MB).toFixed(0)} MB); ` +
        `fleet: ${latencies.length} PUBACKs, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${(latencies.at(-1) ?? Number.NaN).toFixed(0)} ms, ${failures.length} failed; ` +
        `/healthz ${healthTimes.length} answered (max ${Math.max(...healthTimes).toFixed(0)} ms), ${healthFailures.length} failed; server log lines during the attack ${server.logLines() - logLinesBefore}`,
    );
    console.log(`attacker achieved: ${JSON.stringify(report)}; the slow consumer: ${JSON.stringify(stall)}`);

    assert.equal(server.child.exitCode, null, 'the node is still running');
    assert.deepEqual(healthFailures, [], '/healthz answered every time');
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} fleet publishes failed`);
    assert.ok(latencies.length >= FLEET * SECONDS * 0.8, `only ${latencies.length} fleet PUBACKs in ${SECONDS} s`);
    assert.ok(percentile(latencies, 99) < P99_BOUND_MS, `fleet PUBACK p99 ${percentile(latencies, 99).toFixed(0)} ms`);
    const growth = Math.max(peakSampled, afterwards.peak) - baseline.rss;
    assert.ok(growth < RSS_GROWTH_BOUND, `server RSS rose ${(growth / MB).toFixed(0)} MB above its level with the fleet connected`);
    assert.ok(
      report.mostFiltersInOneSession <= limits.maxSubscriptionsPerSession,
      `one session held ${report.mostFiltersInOneSession} filters`,
    );
    assert.ok(report.subscribePackets > 0 && report.connections > 0, 'the attack ran');
    assert.ok(stall.published > 0, 'the slow consumer ran');
    assert.ok(
      clients.every((c) => c.connected),
      'every well-behaved device is still connected',
    );
  });
});
