/**
 * A product's anomaly rules: static thresholds ("more than N messages in M minutes") and learned
 * baselines ("more than z robust standard deviations above the device's own history, or above
 * the product's devices now"). Each rule names the finding's severity and whether a violation
 * quarantines the device by itself. A product without rules of its own gets DEFAULT_RULES.
 */
import type { Severity } from '../model.js';

export const METRICS = [
  'messages',
  'bytes',
  'connects',
  'authFailures',
  'aclDenials',
  'payloadErrors',
  'takeovers',
  'reboots',
  'updateFailures',
  'addresses',
] as const;
export type Metric = (typeof METRICS)[number];

/** The longest window a rule may look at (the detector reads this much of every device's minutes each tick). */
export const MAX_WINDOW_MINUTES = 60;

export interface ThresholdRule {
  metric: Metric;
  /** Summed over the last `windowMinutes` minutes (`addresses`: distinct addresses over the hours the window touches). */
  windowMinutes: number;
  /** A violation is a value above this. */
  max: number;
  severity: Severity;
  /** Quarantine the device when violated (the update path stays open; an operator reactivates it). */
  quarantine: boolean;
}

export interface BaselineRule {
  metric: Exclude<Metric, 'addresses'>;
  /** 'device': the device's own minutes over `historyHours`; 'product': the product's devices this minute. */
  scope: 'device' | 'product';
  /** A violation is a robust z-score above this … */
  z: number;
  /** … and a value of at least this in the minute (small numbers are never anomalous). */
  minimum: number;
  severity: Severity;
  quarantine: boolean;
}

export interface ProductRules {
  thresholds: ThresholdRule[];
  baselines: BaselineRule[];
}

export const DEFAULT_RULES: ProductRules = {
  thresholds: [
    { metric: 'authFailures', windowMinutes: 10, max: 30, severity: 'high', quarantine: false },
    { metric: 'addresses', windowMinutes: 60, max: 20, severity: 'medium', quarantine: false },
    { metric: 'aclDenials', windowMinutes: 10, max: 20, severity: 'medium', quarantine: false },
    { metric: 'payloadErrors', windowMinutes: 10, max: 100, severity: 'low', quarantine: false },
    { metric: 'takeovers', windowMinutes: 10, max: 10, severity: 'medium', quarantine: false },
    { metric: 'updateFailures', windowMinutes: 60, max: 5, severity: 'medium', quarantine: false },
  ],
  baselines: [
    { metric: 'messages', scope: 'device', z: 10, minimum: 120, severity: 'medium', quarantine: false },
    { metric: 'bytes', scope: 'device', z: 10, minimum: 256 * 1024, severity: 'medium', quarantine: false },
    { metric: 'connects', scope: 'device', z: 10, minimum: 10, severity: 'medium', quarantine: false },
    { metric: 'reboots', scope: 'device', z: 10, minimum: 3, severity: 'low', quarantine: false },
    { metric: 'messages', scope: 'product', z: 20, minimum: 600, severity: 'low', quarantine: false },
  ],
};

/** The check ID of a metric's anomaly findings (`anomaly-auth-failures`). */
export function checkIdOf(metric: Metric): string {
  return `anomaly-${metric.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}`;
}
