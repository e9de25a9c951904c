/**
 * A rollout's definition as operators give it (selector, phases, thresholds), the rules it must
 * satisfy, and the deterministic phase plan: devices sorted by a hash of the rollout and device
 * IDs, so "the first 1 %" is a stable, unbiased slice that no one picks by hand.
 */
import { createHash } from 'node:crypto';
import type { RetryPolicy, RolloutDefinition, RolloutPhase, RolloutSelector, ScheduleWindow } from '@bulwark/protocol';
import { RolloutInvalidError } from './rollout-errors.js';

/** A rollout's definition and its parts: wire shapes the console reads too (@bulwark/protocol). */
export type { RetryPolicy, RolloutDefinition, RolloutPhase, RolloutSelector, ScheduleWindow };

export interface RolloutInput {
  releaseId: string;
  name?: string;
  selector: RolloutSelector;
  phases?: RolloutPhase[];
  successThreshold?: number;
  failureThreshold?: number;
  /** Pause for an operator when this fraction of the current phase failed (below failureThreshold, which halts). */
  pauseThreshold?: number | null;
  maxConcurrentDownloads?: number;
  offerTimeoutSeconds?: number;
  retry?: Partial<RetryPolicy>;
  window?: ScheduleWindow | null;
}

/** The settings an operator may change on a rollout that has not finished. */
export type RolloutChanges = Partial<Pick<RolloutInput, 'successThreshold' | 'failureThreshold' | 'pauseThreshold' | 'retry' | 'window'>>;

export const MAX_SELECTOR_ENTRIES = 10_000;
export const MAX_PHASES = 20;
export const MAX_SOAK_SECONDS = 30 * 86_400;
export const MAX_CONCURRENT_DOWNLOADS = 100_000;
export const DEFAULT_OFFER_TIMEOUT_SECONDS = 3600;
export const MIN_OFFER_TIMEOUT_SECONDS = 60;
export const MAX_OFFER_TIMEOUT_SECONDS = 7 * 86_400;
export const MAX_ATTEMPTS = 10;
export const MAX_BACKOFF_SECONDS = 86_400;
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 1, backoffSeconds: 300 };

/**
 * Failures worth another offer: the device could not fetch the image or the metadata, or went
 * silent (a health check that never reported, a lost connection). A failure the device verified
 * (hash, length, signature, rollback, hardware or product refused, a health check that reported
 * failure, a rolled-back trial boot) is final until an operator retries the device.
 */
export const TRANSIENT_FAILURES: ReadonlySet<string> = new Set([
  'update.download_stalled',
  'update.download_failed',
  'update.check_failed',
  'update.device_silent',
]);

export const isTransientFailure = (code: string | null | undefined): boolean => code != null && TRANSIENT_FAILURES.has(code);

/** Seconds to wait before the retry that follows `attempts` failed offers (1 → backoff, 2 → 2 × backoff, …), at most a day. */
export function retryDelaySeconds(policy: RetryPolicy, attempts: number): number {
  return Math.min(MAX_BACKOFF_SECONDS, policy.backoffSeconds * 2 ** Math.max(0, attempts - 1));
}

/** When a device that failed transiently after `attempts` offers may be offered again (ms), or null when it has none left. */
export function retryAtAfter(policy: RetryPolicy, attempts: number, now: number): number | null {
  return attempts < policy.maxAttempts ? now + retryDelaySeconds(policy, attempts) * 1000 : null;
}

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;
const minutesOf = (time: string): number => {
  const match = TIME_OF_DAY.exec(time)!;
  return Number(match[1]) * 60 + Number(match[2]);
};

/** Whether `now` (ms) falls inside the window, in the window's time zone; the start is inside, the end is not. */
export function insideWindow(window: ScheduleWindow | null, now: number): boolean {
  if (!window) return true;
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: window.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(new Date(now))
    .reduce<Record<string, string>>((acc, part) => ({ ...acc, [part.type]: part.value }), {});
  const local = Number(parts.hour) * 60 + Number(parts.minute);
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  return start <= end ? local >= start && local < end : local >= start || local < end;
}

function checkRetry(input: Partial<RetryPolicy> | undefined, base: RetryPolicy): RetryPolicy {
  const retry = { ...base, ...(input ?? {}) };
  if (!Number.isInteger(retry.maxAttempts) || retry.maxAttempts < 1 || retry.maxAttempts > MAX_ATTEMPTS)
    throw new RolloutInvalidError(`retry.maxAttempts must be an integer from 1 (no retry) to ${MAX_ATTEMPTS}`);
  if (!Number.isInteger(retry.backoffSeconds) || retry.backoffSeconds < 0 || retry.backoffSeconds > MAX_BACKOFF_SECONDS)
    throw new RolloutInvalidError(`retry.backoffSeconds must be an integer from 0 to ${MAX_BACKOFF_SECONDS}`);
  return { maxAttempts: retry.maxAttempts, backoffSeconds: retry.backoffSeconds };
}

function checkWindow(window: ScheduleWindow | null | undefined): ScheduleWindow | null {
  if (window == null) return null;
  for (const key of ['start', 'end'] as const)
    if (typeof window[key] !== 'string' || !TIME_OF_DAY.test(window[key]))
      throw new RolloutInvalidError(`window.${key} must be a time of day HH:MM (00:00 to 23:59)`);
  if (window.start === window.end)
    throw new RolloutInvalidError('window.start and window.end must differ (omit window to offer at any time)');
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: window.timeZone });
  } catch {
    throw new RolloutInvalidError(
      `window.timeZone "${String(window.timeZone).slice(0, 64)}" is not an IANA time zone (e.g. Europe/Berlin, UTC)`,
    );
  }
  return { start: window.start, end: window.end, timeZone: window.timeZone };
}

/** The thresholds together: each a fraction above 0 and at most 1, the pause below the halt. */
function checkThresholds(successThreshold: number, failureThreshold: number, pauseThreshold: number | null): void {
  if (!(successThreshold > 0 && successThreshold <= 1))
    throw new RolloutInvalidError('successThreshold must be a fraction above 0 and at most 1');
  if (!(failureThreshold > 0 && failureThreshold <= 1))
    throw new RolloutInvalidError('failureThreshold must be a fraction above 0 and at most 1');
  if (pauseThreshold !== null && !(pauseThreshold > 0 && pauseThreshold < failureThreshold))
    throw new RolloutInvalidError(`pauseThreshold must be a fraction above 0 and below failureThreshold (${failureThreshold})`);
}

/** Applies an operator's changes to a rollout's settings, checked as a whole; RolloutInvalidError names the first rule broken. */
export function changeRollout(
  current: Pick<RolloutDefinition, 'successThreshold' | 'failureThreshold' | 'pauseThreshold' | 'retry' | 'window'>,
  changes: RolloutChanges,
): Pick<RolloutDefinition, 'successThreshold' | 'failureThreshold' | 'pauseThreshold' | 'retry' | 'window'> {
  if (Object.keys(changes).length === 0)
    throw new RolloutInvalidError('Give at least one of successThreshold, failureThreshold, pauseThreshold, retry, window');
  const next = {
    successThreshold: changes.successThreshold ?? current.successThreshold,
    failureThreshold: changes.failureThreshold ?? current.failureThreshold,
    pauseThreshold: changes.pauseThreshold !== undefined ? changes.pauseThreshold : current.pauseThreshold,
    retry: checkRetry(changes.retry, current.retry),
    window: changes.window !== undefined ? checkWindow(changes.window) : current.window,
  };
  checkThresholds(next.successThreshold, next.failureThreshold, next.pauseThreshold);
  return next;
}

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
  const pauseThreshold = input.pauseThreshold ?? null;
  checkThresholds(successThreshold, failureThreshold, pauseThreshold);
  const retry = checkRetry(input.retry, DEFAULT_RETRY);
  const window = checkWindow(input.window);
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
    pauseThreshold,
    retry,
    window,
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
