/** The detector's scoring, on hand-made minute rows: thresholds per window, product baselines, device baselines and their minimum history. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProductRules } from './rules.js';
import { groupByDevice, MINUTE_MS, scoreCandidate, scoreWindow } from './scoring.js';
import type { MinuteRow } from './store.js';

const NOW = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE_MS);

function row(device: string, minutesAgo: number, fields: Partial<MinuteRow> = {}): MinuteRow {
  return {
    device_id: device,
    minute: NOW - minutesAgo * MINUTE_MS,
    organization_id: 'org',
    product_id: 'p',
    messages: 0,
    bytes: 0,
    connects: 0,
    auth_failures: 0,
    acl_denials: 0,
    payload_errors: 0,
    takeovers: 0,
    reboots: 0,
    update_failures: 0,
    addresses: 0,
    ...fields,
  };
}

const score = (rows: MinuteRow[], rules: ProductRules, addresses = new Map<string, number>(), minPeers = 3) =>
  scoreWindow({ devices: groupByDevice(rows), current: NOW, rulesOf: () => rules, addresses, minPeers });

describe('anomaly scoring', () => {
  it('sums a threshold rule over its window only, and flags a value above the maximum, not at it', () => {
    const rules: ProductRules = {
      thresholds: [{ metric: 'authFailures', windowMinutes: 3, max: 10, severity: 'high', quarantine: true }],
      baselines: [],
    };
    const rows = [
      row('a', 0, { auth_failures: 4 }),
      row('a', 2, { auth_failures: 7 }),
      row('a', 3, { auth_failures: 100 }), // outside the 3-minute window
      row('b', 0, { auth_failures: 10 }),
    ];
    const { violations } = score(rows, rules);
    assert.equal(violations.length, 1);
    const [v] = violations;
    assert.equal(v!.deviceId, 'a');
    assert.equal(v!.observed, 11);
    assert.deepEqual(v!.window, { from: NOW - 2 * MINUTE_MS, to: NOW + MINUTE_MS, minutes: 3 });
  });

  it('takes distinct addresses from the address counts, not the minute rows', () => {
    const rules: ProductRules = {
      thresholds: [{ metric: 'addresses', windowMinutes: 60, max: 4, severity: 'medium', quarantine: false }],
      baselines: [],
    };
    const { violations } = score([row('a', 0, { addresses: 1 }), row('b', 0)], rules, new Map([['a', 9]]));
    assert.deepEqual(
      violations.map((v) => [v.deviceId, v.observed]),
      [['a', 9]],
    );
  });

  it("flags a device far above its product's devices this minute once enough peers are active", () => {
    const rules: ProductRules = {
      thresholds: [],
      baselines: [{ metric: 'messages', scope: 'product', z: 10, minimum: 100, severity: 'low', quarantine: false }],
    };
    const peers = ['p1', 'p2', 'p3', 'p4'].map((d, i) => row(d, 0, { messages: 30 + i * 2 }));
    const loud = row('loud', 1, { messages: 900 }); // the previous minute counts too
    const { violations } = score([...peers, loud], rules);
    assert.equal(violations.length, 1);
    assert.equal(violations[0]!.deviceId, 'loud');
    assert.equal(violations[0]!.baseline!.median, 34);
    assert.ok(violations[0]!.baseline!.z > 10);
    // Too few peers: no product baseline.
    assert.equal(score([peers[0]!, loud], rules).violations.length, 0);
  });

  it('scores a device against its own history only once it has the minimum history, quiet minutes counting as 0', () => {
    const rules: ProductRules = {
      thresholds: [],
      baselines: [{ metric: 'messages', scope: 'device', z: 8, minimum: 100, severity: 'medium', quarantine: false }],
    };
    const { candidates } = score([row('d', 0, { messages: 600 }), row('e', 0, { messages: 50 })], rules);
    assert.deepEqual(
      candidates.map((c) => c.deviceId),
      ['d'],
    );
    const from = NOW - 24 * 60 * MINUTE_MS;
    // A row every other minute: the minutes between count as 0.
    const history = Array.from({ length: 60 }, (_, i) => row('d', 2 * i + 2, { messages: 20 }));
    const flagged = scoreCandidate(candidates[0]!, history, from, 60);
    assert.ok(flagged, 'flagged against two hours of history');
    assert.equal(flagged.kind, 'device-baseline');
    assert.equal(flagged.baseline!.samples, 119);
    assert.equal(scoreCandidate(candidates[0]!, history.slice(0, 20), from, 60), null, 'not before 60 minutes of history');
    const busy = Array.from({ length: 120 }, (_, i) => row('d', i + 2, { messages: 580 + (i % 40) }));
    assert.equal(scoreCandidate(candidates[0]!, busy, from, 60), null, 'not anomalous for a device that always sends this much');
  });
});
