/**
 * Scores devices' recent minutes against their product's rules, without storage (the detector
 * reads, this decides; bench/assessment/anomaly.ts times it): threshold rules over each rule's
 * window, the product baseline over the product's devices this minute, and, for a device whose
 * value clears a device-baseline rule's minimum, a candidate whose history the detector loads.
 */
import { baselineOf, robustZ, type Baseline } from './stats.js';
import type { BaselineRule, Metric, ProductRules, ThresholdRule } from './rules.js';
import type { MinuteRow } from './store.js';

export const MINUTE_MS = 60_000;

export type Counted = Exclude<Metric, 'addresses'>;

const COLUMN: Record<Counted, keyof MinuteRow> = {
  messages: 'messages',
  bytes: 'bytes',
  connects: 'connects',
  authFailures: 'auth_failures',
  aclDenials: 'acl_denials',
  payloadErrors: 'payload_errors',
  takeovers: 'takeovers',
  reboots: 'reboots',
  updateFailures: 'update_failures',
};

export const valueOf = (row: MinuteRow, metric: Counted): number => Number(row[COLUMN[metric]]);

export interface Violation {
  deviceId: string;
  organizationId: string;
  productId: string;
  metric: Metric;
  observed: number;
  kind: 'threshold' | 'device-baseline' | 'product-baseline';
  rule: ThresholdRule | BaselineRule;
  /** The minutes the value covers: [from, to). */
  window: { from: number; to: number; minutes: number };
  baseline?: Baseline & { z: number };
}

export interface Candidate {
  deviceId: string;
  organizationId: string;
  productId: string;
  rule: BaselineRule;
  observed: number;
  /** The minute the value was taken at (history ends before the minute ahead of it). */
  minute: number;
}

/** One device's minute rows in the window (an array: a device has at most one per minute, at most an hour of them). */
export interface DeviceMinutes {
  deviceId: string;
  organizationId: string;
  productId: string;
  minutes: MinuteRow[];
}

export function groupByDevice(rows: readonly MinuteRow[]): Map<string, DeviceMinutes> {
  const devices = new Map<string, DeviceMinutes>();
  for (const row of rows) {
    let device = devices.get(row.device_id);
    if (!device) {
      device = { deviceId: row.device_id, organizationId: row.organization_id, productId: row.product_id, minutes: [] };
      devices.set(row.device_id, device);
    }
    device.minutes.push(row);
  }
  return devices;
}

/** The metric summed over the `minutes` minutes ending with `current` (inclusive). */
function windowSum(device: DeviceMinutes, metric: Counted, current: number, minutes: number): number {
  const from = current - (minutes - 1) * MINUTE_MS;
  const column = COLUMN[metric];
  let sum = 0;
  for (const row of device.minutes) {
    const minute = Number(row.minute);
    if (minute >= from && minute <= current) sum += Number(row[column]);
  }
  return sum;
}

/**
 * A baseline rule's value for the device "this minute": the larger of the current (partial)
 * minute and the one before it, so a burst across a minute boundary is seen whole at least once.
 */
export function minuteValue(device: DeviceMinutes, metric: Counted, current: number): number {
  const column = COLUMN[metric];
  let value = 0;
  for (const row of device.minutes) {
    const minute = Number(row.minute);
    if (minute === current || minute === current - MINUTE_MS) value = Math.max(value, Number(row[column]));
  }
  return value;
}

export interface ScoreInput {
  devices: Map<string, DeviceMinutes>;
  /** Start of the current minute. */
  current: number;
  rulesOf(productId: string): ProductRules;
  /** Distinct source addresses per device over the hours the longest `addresses` window touches. */
  addresses: Map<string, number>;
  /** Fewest devices of a product active this minute for its product baseline to apply. */
  minPeers: number;
}

export function scoreWindow(input: ScoreInput): { violations: Violation[]; candidates: Candidate[] } {
  const { devices, current } = input;
  const violations: Violation[] = [];
  const candidates: Candidate[] = [];
  const byProduct = new Map<string, DeviceMinutes[]>();
  for (const device of devices.values()) {
    let peers = byProduct.get(device.productId);
    if (!peers) byProduct.set(device.productId, (peers = []));
    peers.push(device);
  }
  for (const [productId, peers] of byProduct) {
    const rules = input.rulesOf(productId);
    for (const rule of rules.thresholds) {
      const from = current - (rule.windowMinutes - 1) * MINUTE_MS;
      for (const device of peers) {
        const observed =
          rule.metric === 'addresses'
            ? (input.addresses.get(device.deviceId) ?? 0)
            : windowSum(device, rule.metric, current, rule.windowMinutes);
        if (observed > rule.max)
          violations.push({
            ...identity(device),
            metric: rule.metric,
            observed,
            kind: 'threshold',
            rule,
            window: { from, to: current + MINUTE_MS, minutes: rule.windowMinutes },
          });
      }
    }
    for (const rule of rules.baselines) {
      if (rule.scope === 'device') {
        for (const device of peers) {
          const observed = minuteValue(device, rule.metric, current);
          if (observed >= rule.minimum) candidates.push({ ...identity(device), rule, observed, minute: current });
        }
        continue;
      }
      if (peers.length < input.minPeers) continue;
      const values = peers.map((device) => minuteValue(device, rule.metric, current));
      const baseline = baselineOf(values);
      peers.forEach((device, i) => {
        const observed = values[i]!;
        if (observed < rule.minimum) return;
        const z = robustZ(observed, baseline);
        if (z > rule.z)
          violations.push({
            ...identity(device),
            metric: rule.metric,
            observed,
            kind: 'product-baseline',
            rule,
            window: { from: current - MINUTE_MS, to: current + MINUTE_MS, minutes: 2 },
            baseline: { ...baseline, z },
          });
      });
    }
  }
  return { violations, candidates };
}

/**
 * A candidate against its own history: the minutes from its first row in [from, candidate.minute − 1 min)
 * (minutes without a row count as 0). Null when the history is shorter than `minHistoryMinutes` or the value is not anomalous.
 */
export function scoreCandidate(
  candidate: Candidate,
  history: readonly MinuteRow[],
  from: number,
  minHistoryMinutes: number,
): Violation | null {
  const end = candidate.minute - MINUTE_MS;
  let first = Number.POSITIVE_INFINITY;
  for (const row of history) first = Math.min(first, Number(row.minute));
  if (!Number.isFinite(first)) return null;
  const start = Math.max(first, from);
  const length = Math.floor((end - start) / MINUTE_MS);
  if (length < minHistoryMinutes) return null;
  const series = new Array<number>(length).fill(0);
  const metric = candidate.rule.metric;
  for (const row of history) {
    const index = (Number(row.minute) - start) / MINUTE_MS;
    if (index >= 0 && index < length) series[index] = valueOf(row, metric);
  }
  const baseline = baselineOf(series);
  const z = robustZ(candidate.observed, baseline);
  if (z <= candidate.rule.z) return null;
  return {
    deviceId: candidate.deviceId,
    organizationId: candidate.organizationId,
    productId: candidate.productId,
    metric,
    observed: candidate.observed,
    kind: 'device-baseline',
    rule: candidate.rule,
    window: { from: candidate.minute - MINUTE_MS, to: candidate.minute + MINUTE_MS, minutes: 2 },
    baseline: { ...baseline, z },
  };
}

function identity(device: DeviceMinutes) {
  return { deviceId: device.deviceId, organizationId: device.organizationId, productId: device.productId };
}
