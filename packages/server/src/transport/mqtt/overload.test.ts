/**
 * The ingest path under overload, with real mutual-TLS devices driven from a load generator in
 * its own process (bench/support/mqtt-load.ts) against the broker in this one:
 *   - QoS 1 at four times the rate this setup was just measured to sustain (asserted: at least
 *     twice what it sustained during the same run): the writer's queue stays within its bound
 *     (PUBACKs are held instead), every acknowledged message is stored exactly once, nothing of
 *     it is retained afterwards, and the broker still takes a new device;
 *   - a QoS 0 flood over TLS (one device with tiny payloads): the broker stays up with bounded
 *     memory, counts what it drops, and a well-behaved device's QoS 1 messages still go through.
 * SQLite only (the default engine): the flow control under test is the broker's, not the store's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { ENGINES } from '../../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../../testing/devices.js';
import { runLoad, sampler } from '../../testing/load.js';
import { connectDevice, settle, UNLIMITED_DEVICE_RATES } from '../../testing/mqtt.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const MB = 1024 * 1024;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after a full collection: what is retained, not what awaits collection. */
function retainedHeap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

interface Harness {
  t: TestPlatform;
  org: string;
  product: string;
  dir: string;
  serial: number;
}

async function harness(mqtt: Record<string, number>): Promise<Harness> {
  const t = await startTestPlatform(sqlite, { mqtt: { port: 0, connectsPerSecond: 10_000, ...mqtt } });
  const org = await organizationIdOf(t.platform, t.org);
  return { t, org, product: await testProduct(t.platform, org), dir: mkdtempSync(join(tmpdir(), 'bulwark-overload-')), serial: 0 };
}

async function devices(h: Harness, n: number, prefix: string): Promise<TestDevice[]> {
  const out: TestDevice[] = [];
  for (let i = 0; i < n; i++) out.push(await provisionTestDevice(h.t.platform, h.org, h.product, `${prefix}-${++h.serial}`));
  return out;
}

const jobDevices = (list: TestDevice[]) => list.map((d) => ({ id: d.id, key: d.key, cert: d.cert }));

/** Stored telemetry of these devices: how many times each (device, seq) is there. */
async function storedSeqs(t: TestPlatform, ids: string[]): Promise<Map<string, number>> {
  const rows = await t.platform.db.selectFrom('telemetry_readings').select(['device_id', 'data']).where('device_id', 'in', ids).execute();
  const counts = new Map<string, number>();
  for (const row of rows) {
    const seq = (JSON.parse(row.data) as { seq?: number }).seq;
    const key = `${row.device_id}/${seq}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** A device the broker has never seen connects and gets a QoS 1 message stored. */
async function freshDeviceIsServed(h: Harness): Promise<void> {
  const [d] = await devices(h, 1, 'FRESH');
  const client = await connectDevice(h.t.server.mqtt!.port, h.t.ca, d!, d!.id);
  try {
    await client.publishAsync(`d/${d!.id}/telemetry`, '{"values":{"after":1}}', { qos: 1 });
    assert.equal(await h.t.platform.telemetry.store.count(d!.id), 1);
  } finally {
    await client.endAsync();
  }
}

/** Unhandled rejections and uncaught errors in this (the broker's) process while `fn` runs. */
async function noStrayErrors<T>(fn: () => Promise<T>): Promise<T> {
  const stray: unknown[] = [];
  const record = (error: unknown) => stray.push(error);
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
  try {
    const result = await fn();
    assert.deepEqual(stray, [], 'no unhandled rejection or uncaught exception in the broker process');
    return result;
  } finally {
    process.off('unhandledRejection', record);
    process.off('uncaughtException', record);
  }
}

describe('QoS 1 telemetry at twice the sustainable rate [sqlite]', () => {
  // Below the messages the devices keep in flight, so the bound is reached and PUBACKs are held.
  const maxPending = 300;
  let h: Harness;
  let fleet: TestDevice[];

  before(async () => {
    // No per-device rate limit here: the writer, not the token buckets, must be what holds back.
    h = await harness({ ...UNLIMITED_DEVICE_RATES, maxBatch: 1000, maxPending });
    fleet = await devices(h, 30, 'LOAD');
  });
  after(async () => {
    rmSync(h.dir, { recursive: true, force: true });
    await h.t.close();
  });

  it('holds PUBACKs instead of queueing past the bound, stores every acknowledged message exactly once, and keeps serving', async () => {
    const gateway = h.t.server.mqtt!;
    const port = gateway.port;
    await noStrayErrors(async () => {
      // Calibration: each device keeps 64 messages in flight, so the broker runs as fast as it can
      // (after a one-second warm-up, which would otherwise count the JIT's first work against it).
      const calibrate = { port, ca: h.t.ca, devices: jobDevices(fleet), window: 64, connectConcurrency: 10 };
      const warmup = await runLoad({ ...calibrate, seconds: 1 }, h.dir, 'warmup');
      const calibration = await runLoad({ ...calibrate, seconds: 2, seqBase: warmup.report.sent }, h.dir, 'calibrate');
      const sustainable = calibration.report.acked / calibration.report.seconds;
      assert.ok(calibration.report.acked > 1000, `calibration acknowledged only ${calibration.report.acked}`);

      // Overload: open loop at 4× that for 4 s, PUBACKs or not; then 2 s for late ones, after
      // which the devices disconnect with messages still unacknowledged (those may be stored or
      // not). 4×, because the broker may do better under open-loop load than the closed loop
      // measured (up to 1.03× on a steady machine, 1.68× when other test files finished between
      // calibration and run): what counts is twice what it sustains in this run.
      const seconds = 4;
      const rate = Math.ceil(4 * sustainable);
      const ids = fleet.map((d) => d.id);
      const base = warmup.report.sent + calibration.report.sent;
      let peakQueue = 0;
      let peakRss = 0;
      const stop = sampler(20, () => {
        peakQueue = Math.max(peakQueue, gateway.writer.stats.pendingRows);
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      });
      const rssBefore = process.memoryUsage().rss;
      const heapBefore = retainedHeap();
      const overload = await runLoad(
        {
          port,
          ca: h.t.ca,
          devices: jobDevices(fleet),
          window: 0,
          seconds,
          connectConcurrency: 10,
          mode: 'rate',
          rate,
          grace: 2,
          seqBase: base,
        },
        h.dir,
        'overload',
      );
      stop();
      const offered = overload.report.sent / overload.report.sendSeconds;
      const sustained = overload.report.ackedInRun / overload.report.sendSeconds;
      const stats = gateway.writer.stats;
      console.log(
        `calibrated ${sustainable.toFixed(0)} msg/s; offered ${offered.toFixed(0)} msg/s (${(offered / sustainable).toFixed(2)}×); acknowledged ${overload.report.acked} of ${overload.report.sent} (stored and acknowledged while sending: ${sustained.toFixed(0)} msg/s); ` +
          `p50 ${overload.report.p50.toFixed(0)} ms p99 ${overload.report.p99.toFixed(0)} ms; queue peak ${stats.peakPendingRows} (sampled ${peakQueue}) of ${maxPending}; ` +
          `writes waiting peak ${stats.peakWaitingWrites}; RSS ${(rssBefore / MB).toFixed(0)} → peak ${(peakRss / MB).toFixed(0)} MB; disconnected ${overload.report.disconnected}`,
      );
      assert.ok(
        offered >= 2 * Math.max(sustainable, sustained),
        `offered ${offered.toFixed(0)} msg/s, not twice what the broker sustains (${sustainable.toFixed(0)} calibrated, ${sustained.toFixed(0)} in the run)`,
      );
      assert.ok(stats.peakPendingRows <= maxPending, `writer queue reached ${stats.peakPendingRows} rows, bound ${maxPending}`);
      assert.ok(stats.peakWaitingWrites > 0, 'the bound was reached: writes waited for room (PUBACKs held)');
      // Held messages are bounded too: Aedes reads a connection again only once every packet of
      // its last read is handled, and a read is at most the guard's 16 KB buffer plus one 16 KB
      // TLS record, so each device has at most 32 KB of packets waiting.
      const smallest = 2 + 2 + `d/${fleet[0]!.id}/telemetry`.length + 2 + '{"values":{"seq":1,"temperature":21.5}}'.length;
      const perRead = Math.ceil((32 * 1024) / smallest);
      assert.ok(
        stats.peakWaitingWrites <= fleet.length * perRead,
        `${stats.peakWaitingWrites} writes waiting for ${fleet.length} devices (at most ${perRead} each)`,
      );
      assert.equal(overload.report.disconnected, 0, 'no device was disconnected');

      // Every acknowledged message is stored, and nothing is stored twice (the generator never
      // retransmits: it does not reconnect, so a duplicate here would be the broker's doing).
      await gateway.writer.drain();
      const stored = await storedSeqs(h.t, ids);
      const lost: string[] = [];
      let ackedCount = 0;
      for (const run of [warmup, calibration, overload]) {
        for (const [id, seqs] of run.acked) {
          for (const seq of seqs) {
            ackedCount++;
            if (!stored.has(`${id}/${seq}`)) lost.push(`${id}/${seq}`);
          }
        }
      }
      assert.equal(ackedCount, warmup.report.acked + calibration.report.acked + overload.report.acked);
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} of ${ackedCount} acknowledged messages are not stored`);
      const twice = [...stored].filter(([, n]) => n > 1);
      assert.deepEqual(twice.slice(0, 10), [], `${twice.length} messages stored more than once`);
      const overloadRows = [...stored.keys()].filter((k) => Number(k.split('/')[1]) > base).length;
      assert.ok(overloadRows <= overload.report.sent, `${overloadRows} rows stored for ${overload.report.sent} sent`);

      await freshDeviceIsServed(h);
      // Nothing of the overload is retained once it is over (queues emptied, sessions gone). The
      // test's own records of every message (what was acknowledged and what is stored: tens of MB
      // on a quiet machine, where the overload runs fastest) are let go first, so they are not
      // counted as the broker's.
      stored.clear();
      lost.length = 0;
      for (const run of [warmup, calibration, overload]) run.acked.clear();
      await settle(300);
      const heapGrowth = retainedHeap() - heapBefore;
      console.log(`retained heap after the overload: ${(heapGrowth / MB).toFixed(1)} MB more than before`);
      assert.ok(heapGrowth < 48 * MB, `the heap retains ${(heapGrowth / MB).toFixed(0)} MB more after the overload`);
    });
  });
});

describe('a QoS 0 flood over TLS [sqlite]', () => {
  let h: Harness;
  let flooders: TestDevice[];
  let steady: TestDevice;
  const clients: MqttClient[] = [];
  // The platform's default per-device limit: 200 messages/s with a burst of 1,000.
  const perSecond = 200;
  const burst = 1000;

  before(async () => {
    h = await harness({ publishesPerSecond: perSecond, publishBurst: burst, maxBatch: 1000, maxPending: 4000 });
    flooders = await devices(h, 8, 'FLOOD');
    steady = (await devices(h, 1, 'STEADY'))[0]!;
  });
  after(async () => {
    for (const c of clients) c.end(true);
    rmSync(h.dir, { recursive: true, force: true });
    await h.t.close();
  });

  it('stays up within a memory ceiling, counts its drops, and still acknowledges a well-behaved device', async () => {
    const gateway = h.t.server.mqtt!;
    await noStrayErrors(async () => {
      const good = await connectDevice(gateway.port, h.t.ca, steady, steady.id);
      clients.push(good);
      await good.publishAsync(`d/${steady.id}/telemetry`, '{"values":{"warmup":1}}', { qos: 1 });
      await settle(200);
      const before = process.memoryUsage();
      let peak = { rss: before.rss, heapUsed: before.heapUsed };
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      let peakQueue = 0;
      const stop = sampler(25, () => {
        peakQueue = Math.max(peakQueue, gateway.writer.stats.pendingRows);
        const m = process.memoryUsage();
        peak = { rss: Math.max(peak.rss, m.rss), heapUsed: Math.max(peak.heapUsed, m.heapUsed) };
      });

      // The steady device: one QoS 1 message every 50 ms during the flood, each timed to its PUBACK.
      const seconds = 5;
      const latencies: number[] = [];
      const failures: string[] = [];
      let steadySent = 0;
      const flood = runLoad(
        {
          port: gateway.port,
          ca: h.t.ca,
          devices: jobDevices(flooders),
          window: 0,
          seconds,
          connectConcurrency: 8,
          mode: 'flood',
          tiny: true,
        },
        h.dir,
        'flood',
      );
      const steadyRun = (async () => {
        await settle(1000); // the flood is connected and running by now
        const until = Date.now() + (seconds - 1.5) * 1000;
        while (Date.now() < until) {
          const at = performance.now();
          steadySent++;
          try {
            await good.publishAsync(`d/${steady.id}/telemetry`, `{"values":{"n":${steadySent}}}`, { qos: 1 });
            latencies.push(performance.now() - at);
          } catch (error) {
            failures.push((error as Error).message);
          }
          await settle(50);
        }
      })();
      const [report] = await Promise.all([flood.then((r) => r.report), steadyRun]);
      stop();
      loop.disable();

      const stats = gateway.stats;
      latencies.sort((a, b) => a - b);
      const maxLatency = latencies.at(-1) ?? Number.NaN;
      console.log(
        `flood: ${report.sent} QoS 0 messages offered by ${flooders.length} devices in ${seconds} s (${(report.sent / seconds).toFixed(0)}/s); rate-limited drops ${stats.rateLimitedDrops}, overload drops ${stats.overloadDrops}; ` +
          `RSS ${(before.rss / MB).toFixed(0)} → peak ${(peak.rss / MB).toFixed(0)} MB, heap ${(before.heapUsed / MB).toFixed(0)} → peak ${(peak.heapUsed / MB).toFixed(0)} MB; ` +
          `steady device ${latencies.length}/${steadySent} acknowledged, p50 ${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)} ms, max ${maxLatency.toFixed(1)} ms; disconnected ${report.disconnected}; ` +
          `event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms max ${(loop.max / 1e6).toFixed(0)} ms; writer queue peak ${peakQueue}`,
      );
      assert.ok(report.sent > 50_000, `the flood offered only ${report.sent} messages`);
      assert.ok(stats.rateLimitedDrops > 0, 'drops over the rate limit are counted');
      // A device over its rate is not read until it is back within it: the broker parses a small
      // part of what the flood pushes (without that hold it parsed and dropped 55-75% of it here).
      const parsed = stats.telemetryMessages + stats.rateLimitedDrops;
      assert.ok(parsed < report.sent / 4, `the broker parsed ${parsed} of ${report.sent} flood messages`);
      assert.deepEqual(failures, []);
      // Generous for a shared two-core machine; before the flow control the steady device waited
      // 5 to 8 s here behind the flood's rows and reads.
      assert.ok(latencies[Math.floor(latencies.length / 2)]! < 100, 'median PUBACK under 100 ms');
      assert.ok(maxLatency < 3000, `a well-behaved device waited ${maxLatency.toFixed(0)} ms for a PUBACK`);
      assert.ok(peak.rss - before.rss < 128 * MB, `RSS grew by ${((peak.rss - before.rss) / MB).toFixed(0)} MB`);
      assert.ok(peak.heapUsed - before.heapUsed < 64 * MB, `heap grew by ${((peak.heapUsed - before.heapUsed) / MB).toFixed(0)} MB`);

      // The limit held: each flooder got at most its rate for the run plus its burst stored.
      await gateway.writer.drain();
      for (const d of flooders) {
        const n = await h.t.platform.telemetry.store.count(d.id);
        assert.ok(n <= perSecond * (seconds + 2) + burst, `flooder ${d.serial} got ${n} messages stored`);
      }
      assert.equal(await h.t.platform.telemetry.store.count(steady.id), latencies.length + 1);
      assert.ok(good.connected, 'the well-behaved device is still connected');
      await freshDeviceIsServed(h);
    });
  });
});
