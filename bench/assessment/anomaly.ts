/**
 * What anomaly detection costs beside what it watches (docs/assessment.md, "Anomaly detection"):
 *   1. scoring: one detector tick's work on 100,000 devices' minute rows (the window of the
 *      longest per-minute rule), threshold rules, the product baseline (median and MAD over a
 *      product's devices) and device-baseline candidates, per device-minute; and a device's own
 *      baseline from a day of history, per candidate;
 *   2. the flush: the recorder's batched upsert of 20,000 devices' minute rows into a real
 *      SQLite file (migrations applied), per device-minute;
 *   3. on the ingest path, the recorder's counting per message (two field increments on the
 *      session's counters), beside the baseline of the bare MQTT library on the same message:
 *      mqtt-packet parsing a telemetry PUBLISH, per message, in the same run.
 * Printed: each figure, the baseline, the ratio.
 *
 *   npm run bench:anomaly -- [--devices 100000] [--minutes 10] [--flush-devices 20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { BehaviourRecorder } from '../../packages/server/src/assessment/anomaly/recorder.js';
import { DEFAULT_RULES, type ProductRules } from '../../packages/server/src/assessment/anomaly/rules.js';
import { groupByDevice, MINUTE_MS, scoreCandidate, scoreWindow } from '../../packages/server/src/assessment/anomaly/scoring.js';
import { BehaviourStore, type MinuteRow } from '../../packages/server/src/assessment/anomaly/store.js';
import { openDatabase } from '../../packages/server/src/storage/database.js';
import { migrateToLatest } from '../../packages/server/src/storage/migrate.js';
import { machine, median, table } from '../support/measure.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    minutes: { type: 'string', default: '10' },
    'flush-devices': { type: 'string', default: '20000' },
  },
});
const DEVICES = Number(values.devices);
const MINUTES = Number(values.minutes);
const FLUSH_DEVICES = Number(values['flush-devices']);
for (const [name, n] of Object.entries({ devices: DEVICES, minutes: MINUTES, 'flush-devices': FLUSH_DEVICES }))
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
const PRODUCTS = 20;
const CANDIDATES = 1000;
const HISTORY_MINUTES = 1440;

const now = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

function row(device: number, minute: number, busy: boolean): MinuteRow {
  const messages = busy ? 5000 : Math.floor(30 + random() * 30);
  return {
    device_id: `dev-${device}`,
    minute,
    organization_id: 'org',
    product_id: `product-${device % PRODUCTS}`,
    messages,
    bytes: messages * 80,
    connects: random() < 0.01 ? 1 : 0,
    auth_failures: 0,
    acl_denials: 0,
    payload_errors: 0,
    takeovers: 0,
    reboots: 0,
    update_failures: 0,
    addresses: 1,
  };
}

/** Median of `runs` timings of `work` (ms). */
function timed(runs: number, work: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    times.push(performance.now() - started);
  }
  return median(times);
}

console.log(`anomaly detection cost — ${machine()}`);

// 1. Scoring one tick over DEVICES devices × MINUTES minutes; 0.1 % of the devices flood.
const rows: MinuteRow[] = [];
for (let d = 0; d < DEVICES; d++) for (let m = 0; m < MINUTES; m++) rows.push(row(d, now - m * MINUTE_MS, d % 1000 === 0 && m === 0));
const rules: ProductRules = {
  thresholds: [
    ...DEFAULT_RULES.thresholds,
    { metric: 'messages', windowMinutes: MINUTES, max: 10_000, severity: 'high', quarantine: true },
  ],
  baselines: DEFAULT_RULES.baselines,
};
let violations = 0;
let candidates: ReturnType<typeof scoreWindow>['candidates'] = [];
const scoreMs = timed(5, () => {
  const devices = groupByDevice(rows);
  const scored = scoreWindow({ devices, current: now, rulesOf: () => rules, addresses: new Map(), minPeers: 10 });
  violations = scored.violations.length;
  candidates = scored.candidates;
});
const perDeviceMinuteNs = (scoreMs * 1e6) / (DEVICES * MINUTES);

// A device's own baseline: a day of minutes per candidate.
const history: MinuteRow[] = [];
for (let m = 2; m < HISTORY_MINUTES + 2; m++) history.push(row(0, now - m * MINUTE_MS, false));
const candidate = candidates[0] ?? {
  deviceId: 'dev-0',
  organizationId: 'org',
  productId: 'product-0',
  rule: DEFAULT_RULES.baselines[0]!,
  observed: 5000,
  minute: now,
};
const historyMs = timed(5, () => {
  for (let i = 0; i < CANDIDATES; i++) scoreCandidate(candidate, history, now - HISTORY_MINUTES * MINUTE_MS - 2 * MINUTE_MS, 60);
});
const perCandidateUs = (historyMs * 1000) / CANDIDATES;

// 3. The ingest path: the recorder's counting per message, and the bare library's parse of the same PUBLISH.
const payload = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 40, ts: Date.now() }));
const publish = mqttPacket.generate({
  cmd: 'publish',
  topic: 'd/0b8f0c1e-8a4f-4a57-9bb1-0d8a1e7b2c11/telemetry',
  payload,
  qos: 1,
  messageId: 1,
  retain: false,
  dup: false,
});
const MESSAGES = 2_000_000;
const parser = mqttPacket.parser({ protocolVersion: 4 });
let parsed = 0;
parser.on('packet', () => parsed++);
const parseMs = timed(3, () => {
  for (let i = 0; i < MESSAGES / 10; i++) parser.parse(publish);
});
const parseNs = (parseMs * 1e6) / (MESSAGES / 10);
const counts = { messages: 0, bytes: 0 };
const countMs = timed(3, () => {
  for (let i = 0; i < MESSAGES; i++) {
    counts.messages++;
    counts.bytes += payload.length;
  }
});
const countNs = (countMs * 1e6) / MESSAGES;

// 2. The flush into a real SQLite file.
const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-bench-anomaly-'));
const handle = openDatabase({ url: 'sqlite', dataDir });
let flushMs: number;
try {
  await migrateToLatest(handle);
  const recorder = new BehaviourRecorder(
    new BehaviourStore(handle.db),
    () => now,
    FLUSH_DEVICES,
    () => crypto.randomUUID(),
  );
  const sessions = [];
  for (let d = 0; d < FLUSH_DEVICES; d++)
    sessions.push(recorder.attach({ deviceId: `dev-${d}`, organizationId: 'org', productId: `product-${d % PRODUCTS}` }, '10.0.0.1'));
  await recorder.flush();
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    for (const s of sessions) {
      s.messages += 60;
      s.bytes += 4800;
    }
    const started = performance.now();
    await recorder.flush();
    times.push(performance.now() - started);
  }
  flushMs = median(times);
} finally {
  await handle.close();
  rmSync(dataDir, { recursive: true, force: true });
}
const flushPerDeviceUs = (flushMs * 1000) / FLUSH_DEVICES;

console.log(
  `\nscoring: ${DEVICES.toLocaleString()} devices × ${MINUTES} minutes (${rows.length.toLocaleString()} rows), ${violations} violations, ${candidates.length} baseline candidates`,
);
table(
  ['figure', 'value', 'unit'],
  [
    ['tick: score the window (group, thresholds, product baselines)', scoreMs, 'ms'],
    ['  per device-minute', perDeviceMinuteNs, 'ns'],
    [`device baseline from ${HISTORY_MINUTES} minutes of history`, perCandidateUs, 'µs per candidate'],
    [`flush: ${FLUSH_DEVICES.toLocaleString()} devices' minute rows into SQLite`, flushMs, 'ms'],
    ['  per device-minute', flushPerDeviceUs, 'µs'],
    ['ingest path: recorder counting', countNs, 'ns per message'],
    ['baseline: mqtt-packet parse of the same PUBLISH', parseNs, 'ns per message'],
  ],
);
console.log(
  `\nratio: counting / bare parse = ${(countNs / parseNs).toFixed(4)} (the share the recorder adds to the cheapest step of ingest)`,
);
console.log(
  `ratio: scoring per device-minute / bare parse per message = ${(perDeviceMinuteNs / parseNs).toFixed(2)} (a device-minute is scored once; a device sends many messages a minute)`,
);
console.log(`ratio: flush per device-minute / bare parse per message = ${((flushPerDeviceUs * 1000) / parseNs).toFixed(2)}`);
if (parsed === 0) throw new Error('the parser parsed nothing');
