/**
 * A rollout as the API serves it (`GET /api/v1/updates/rollouts`, a rollout's detail and its
 * devices): its definition as the operator gave it, then where it stands. Built by the server
 * (server/src/updates/rollouts.ts) and read by the console.
 */
import type { RolloutDeviceState } from './updates.js';

export type RolloutStatus = 'running' | 'paused' | 'halted' | 'aborted' | 'completed';

export interface RolloutSelector {
  groups?: string[];
  tags?: string[];
  deviceIds?: string[];
  /** A remediation campaign: every device of the product running one of these versions. */
  firmwareVersions?: string[];
}

export interface RolloutPhase {
  percent: number;
  soakSeconds: number;
}

/**
 * How a device that failed for a transient reason is offered again: up to `maxAttempts` offers
 * in all, the n-th retry after `backoffSeconds × 2^(n-1)` (capped at a day). 1 = no retry.
 */
export interface RetryPolicy {
  maxAttempts: number;
  backoffSeconds: number;
}

/**
 * The local time of day devices may be offered the release in, `HH:MM` to `HH:MM` (an end before
 * the start wraps past midnight) in an IANA time zone.
 */
export interface ScheduleWindow {
  start: string;
  end: string;
  timeZone: string;
}

/** A rollout's definition, every default filled in. */
export interface RolloutDefinition {
  releaseId: string;
  name: string;
  selector: RolloutSelector;
  phases: RolloutPhase[];
  successThreshold: number;
  failureThreshold: number;
  maxConcurrentDownloads: number;
  /** How long an offered device may stay silent before its download slot is given back. */
  offerTimeoutSeconds: number;
  pauseThreshold: number | null;
  retry: RetryPolicy;
  window: ScheduleWindow | null;
}

/** A rollout as the API shows it: its definition, then where it stands. */
export interface RolloutView extends RolloutDefinition {
  id: string;
  productId: string;
  status: RolloutStatus;
  currentPhase: number;
  phaseStartedAt: string;
  deviceCount: number;
  skippedCount: number;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** How many of a rollout's devices stand in each state. */
export type RolloutStateCounts = Record<RolloutDeviceState, number>;

/** One rollout with its devices counted per state, in all and in the current phase. */
export interface RolloutDetailView extends RolloutView {
  counts: RolloutStateCounts;
  currentPhaseCounts: RolloutStateCounts;
  /** Devices that failed for a transient reason and wait for another offer. */
  retrying: number;
}

/** A device's progress in a rollout. */
export interface RolloutDeviceView {
  deviceId: string;
  phase: number;
  state: RolloutDeviceState;
  error: { code: string; message: string } | null;
  offeredAt: string | null;
  updatedAt: string;
  /** Offers the device had in this rollout. */
  attempts: number;
  /** After a transient failure: when it may be offered again. */
  retryAt: string | null;
}
