/**
 * A rollout's definition as operators give it (selector, phases, thresholds), the rules it must
 * satisfy, and the deterministic phase plan: devices sorted by a hash of the rollout and device
 * IDs, so "the first 1 %" is a stable, unbiased slice that no one picks by hand.
 */
import { createHash } from 'node:crypto';
import { RolloutInvalidError } from './rollout-errors.js';

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

export interface RolloutInput {
  releaseId: string;
  name?: string;
  selector: RolloutSelector;
  phases?: RolloutPhase[];
  successThreshold?: number;
  failureThreshold?: number;
  maxConcurrentDownloads?: number;
  offerTimeoutSeconds?: number;
}

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
}

export const MAX_SELECTOR_ENTRIES = 10_000;
export const MAX_PHASES = 20;
export const MAX_SOAK_SECONDS = 30 * 86_400;
export const MAX_CONCURRENT_DOWNLOADS = 100_000;
export const DEFAULT_OFFER_TIMEOUT_SECONDS = 3600;
export const MIN_OFFER_TIMEOUT_SECONDS = 60;
export const MAX_OFFER_TIMEOUT_SECONDS = 7 * 86_400;

const SELECTOR_KEYS = ['groups', 'tags', 'deviceIds', 'firmwareVersions'] as const;

/** Checks an operator's rollout and fills in the defaults; RolloutInvalidError names the first rule broken. */
export function defineRollout(input: RolloutInput): RolloutDefinition {
  const selector: RolloutSelector = {};
  for (const key of SELECTOR_KEYS) {
    const values = input.selector[key];
    if (values === undefined) continue;
    if (!Array.isArray(values) || values.length === 0)
      throw new RolloutInvalidError(`selector.${key} must be a non-empty array when given`);
    if (values.length > MAX_SELECTOR_ENTRIES)
      throw new RolloutInvalidError(`selector.${key} has ${values.length} entries; at most ${MAX_SELECTOR_ENTRIES}`);
    if (values.some((v) => typeof v !== 'string' || v.length === 0 || v.length > 128))
      throw new RolloutInvalidError(`selector.${key} entries must be strings of 1 to 128 characters`);
    selector[key] = [...new Set(values)];
  }
  if (Object.keys(selector).length === 0)
    throw new RolloutInvalidError('The selector needs at least one of groups, tags, deviceIds, firmwareVersions');

  const phases = input.phases ?? [{ percent: 100, soakSeconds: 0 }];
  if (phases.length === 0 || phases.length > MAX_PHASES) throw new RolloutInvalidError(`Give 1 to ${MAX_PHASES} phases`);
  phases.forEach((phase, i) => {
    if (!Number.isFinite(phase.percent) || phase.percent <= 0 || phase.percent > 100)
      throw new RolloutInvalidError(`phases[${i}].percent must be above 0 and at most 100`);
    if (i > 0 && phase.percent <= phases[i - 1]!.percent)
      throw new RolloutInvalidError(`phases[${i}].percent must be above the previous phase's (${phases[i - 1]!.percent})`);
    if (!Number.isInteger(phase.soakSeconds) || phase.soakSeconds < 0 || phase.soakSeconds > MAX_SOAK_SECONDS)
      throw new RolloutInvalidError(`phases[${i}].soakSeconds must be an integer from 0 to ${MAX_SOAK_SECONDS}`);
  });
  if (phases[phases.length - 1]!.percent !== 100) throw new RolloutInvalidError('The last phase must reach 100 percent');

  const successThreshold = input.successThreshold ?? 0.95;
  const failureThreshold = input.failureThreshold ?? 0.1;
  if (!(successThreshold > 0 && successThreshold <= 1))
    throw new RolloutInvalidError('successThreshold must be a fraction above 0 and at most 1');
  if (!(failureThreshold > 0 && failureThreshold <= 1))
    throw new RolloutInvalidError('failureThreshold must be a fraction above 0 and at most 1');
  const maxConcurrentDownloads = input.maxConcurrentDownloads ?? 100;
  if (!Number.isInteger(maxConcurrentDownloads) || maxConcurrentDownloads < 1 || maxConcurrentDownloads > MAX_CONCURRENT_DOWNLOADS) {
    throw new RolloutInvalidError(`maxConcurrentDownloads must be an integer from 1 to ${MAX_CONCURRENT_DOWNLOADS}`);
  }
  const offerTimeoutSeconds = input.offerTimeoutSeconds ?? DEFAULT_OFFER_TIMEOUT_SECONDS;
  if (
    !Number.isInteger(offerTimeoutSeconds) ||
    offerTimeoutSeconds < MIN_OFFER_TIMEOUT_SECONDS ||
    offerTimeoutSeconds > MAX_OFFER_TIMEOUT_SECONDS
  ) {
    throw new RolloutInvalidError(
      `offerTimeoutSeconds must be an integer from ${MIN_OFFER_TIMEOUT_SECONDS} to ${MAX_OFFER_TIMEOUT_SECONDS}`,
    );
  }
  const name = (input.name ?? '').trim();
  if (name.length > 200) throw new RolloutInvalidError('name is at most 200 characters');
  return {
    releaseId: input.releaseId,
    name,
    selector,
    phases: phases.map((p) => ({ percent: p.percent, soakSeconds: p.soakSeconds })),
    successThreshold,
    failureThreshold,
    maxConcurrentDownloads,
    offerTimeoutSeconds,
  };
}

export function rankOf(rolloutId: string, deviceId: string): string {
  return createHash('sha256').update(`${rolloutId}:${deviceId}`).digest('hex');
}

/**
 * Assigns each device (sorted by rank) to a phase: the device at position i of n goes to the first
 * phase whose cumulative share ceil(n × percent / 100) exceeds i, so 1 % of any fleet is at least one device.
 */
export function planPhases(
  rolloutId: string,
  deviceIds: string[],
  phases: RolloutPhase[],
): { deviceId: string; rank: string; phase: number }[] {
  const ranked = deviceIds
    .map((deviceId) => ({ deviceId, rank: rankOf(rolloutId, deviceId) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0));
  const bounds = phases.map((p) => Math.ceil((ranked.length * p.percent) / 100));
  let phase = 0;
  return ranked.map((entry, i) => {
    while (i >= bounds[phase]!) phase++;
    return { ...entry, phase };
  });
}
