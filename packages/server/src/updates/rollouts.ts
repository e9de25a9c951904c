/**
 * Rollouts (campaigns): a release offered to a snapshot of devices in phases, each phase advancing
 * once enough of its devices succeeded and its soak time passed, the whole halting by itself when
 * too many failed, never more devices downloading at once than the cap. Offering a device means its
 * director targets name the release (the director derives that from the rollout tables) and it is
 * told `updates/available`. Operators pause, resume and abort; every change is audited.
 */
import semver from 'semver';
import {
  UPDATE_TOPICS,
  type RolloutDetailView,
  type RolloutDeviceState,
  type RolloutDeviceView,
  type RolloutStateCounts,
  type RolloutView,
  type VersionReport,
} from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { DeviceMessenger } from '../devices/messaging.js';
import type { DevicesService } from '../devices/service.js';
import { NotFoundError } from '../errors.js';
import { newId } from '../tokens.js';
import type { Director, SignedDirectorTargets } from './director.js';
import type { ReleaseService } from './releases.js';
import {
  RolloutEmptyError,
  RolloutNotFoundError,
  RolloutReleaseNotFoundError,
  RolloutReleaseRefusedError,
  RolloutInvalidError,
  RolloutStatusError,
  RolloutStillFailingError,
} from './rollout-errors.js';
import { DeviceUpdateInbox } from './rollout-inbox.js';
import {
  changeRollout,
  defineRollout,
  insideWindow,
  planPhases,
  retryAtAfter,
  type RetryPolicy,
  type RolloutChanges,
  type RolloutInput,
  type RolloutPhase,
  type RolloutSelector,
  type ScheduleWindow,
} from './rollout-model.js';
import { DeviceReportStore } from './device-report-store.js';
import { DEVICE_SILENT, RolloutStore, type RolloutDeviceRow, type RolloutRow } from './rollout-store.js';
import type { RolloutsTable } from '../storage/rollout-tables.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';
import type { Executor } from '../storage/executor.js';

export type RolloutStatus = RolloutsTable['status'];

export const MAX_DEVICES_PAGE = 500;
const LIST_PAGE = 100;

/** A rollout, its detail and a device's progress in it: wire shapes the console reads too (@bulwark/protocol). */
export type { RolloutDetailView, RolloutDeviceView, RolloutView };

type Progress = Pick<
  RolloutDeviceRow,
  'phase' | 'state' | 'error_code' | 'error_message' | 'offered_at' | 'updated_at' | 'attempts' | 'retry_at'
>;

/** A device's progress in a rollout as callers see it (its rollout's device list, the device's update status). */
function progressOf(row: Progress): Omit<RolloutDeviceView, 'deviceId'> {
  return {
    phase: row.phase,
    state: row.state,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    offeredAt: iso(row.offered_at),
    updatedAt: iso(row.updated_at)!,
    attempts: Number(row.attempts),
    retryAt: iso(row.retry_at),
  };
}

/** What one tick did, summed over the running rollouts (for the log: timed-out offers are not audited one by one). */
export interface TickResult {
  /** Devices newly offered the release. */
  offered: number;
  /** Offered devices that never started within the offer timeout, put back to waiting. */
  withdrawn: number;
  /** Devices that started but stayed silent past the offer timeout, failed with `update.device_silent` (or waiting for a retry). */
  silent: number;
}

function view(row: RolloutRow): RolloutView {
  return {
    id: row.id,
    name: row.name,
    releaseId: row.release_id,
    productId: row.product_id,
    status: row.status,
    selector: JSON.parse(row.selector) as RolloutSelector,
    phases: JSON.parse(row.phases) as RolloutPhase[],
    successThreshold: Number(row.success_threshold),
    failureThreshold: Number(row.failure_threshold),
    maxConcurrentDownloads: row.max_concurrent_downloads,
    offerTimeoutSeconds: row.offer_timeout_seconds,
    pauseThreshold: row.pause_threshold === null ? null : Number(row.pause_threshold),
    retry: retryPolicyOf(row),
    window: scheduleWindowOf(row),
    currentPhase: row.current_phase,
    phaseStartedAt: iso(row.phase_started_at)!,
    deviceCount: row.device_count,
    skippedCount: row.skipped_count,
    createdBy: row.created_by,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    finishedAt: iso(row.finished_at),
  };
}

const UNFINISHED_STATUSES: RolloutStatus[] = ['running', 'paused', 'halted'];
const scheduleWindowOf = (row: RolloutRow): ScheduleWindow | null =>
  row.schedule_window ? (JSON.parse(row.schedule_window) as ScheduleWindow) : null;
/** The failed and rolled-back share of the devices counted. */
function failureRate(counts: RolloutStateCounts): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : (counts.failed + counts.rolled_back) / total;
}
const retryPolicyOf = (row: RolloutRow): RetryPolicy => ({ maxAttempts: row.max_attempts, backoffSeconds: row.retry_backoff_seconds });

export class RolloutService {
  readonly store: RolloutStore;
  private readonly reports: DeviceReportStore;
  private readonly inbox: DeviceUpdateInbox;
  private ticking: Promise<TickResult> | null = null;

  constructor(
    readonly db: Executor,
    readonly director: Director,
    readonly releases: ReleaseService,
    readonly devices: DevicesService,
    readonly link: DeviceMessenger,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {
    this.store = new RolloutStore(db);
    this.reports = new DeviceReportStore(db);
    this.inbox = new DeviceUpdateInbox(db, this.store, this.reports, clock);
  }

  /**
   * What `create` would enrol, without creating anything: the devices of the release's product the
   * selector matches (enrollable statuses only), and how many of them another unfinished rollout holds.
   */
  async preview(
    actor: Actor,
    input: Pick<RolloutInput, 'releaseId' | 'selector'>,
  ): Promise<{ matched: number; enrollable: number; busy: number }> {
    requirePermission(actor, 'rollouts:manage');
    const definition = defineRollout({ releaseId: input.releaseId, selector: input.selector });
    const release = await this.publishedRelease(actor.organizationId, definition.releaseId, this.db);
    const selected = await this.store.select(actor.organizationId, release.productId, definition.selector, this.db);
    const busy = selected.filter((d) => d.busy).length;
    return { matched: selected.length, enrollable: selected.length - busy, busy };
  }

  async create(actor: Actor, input: RolloutInput): Promise<RolloutView & { enrolled: number; skipped: number }> {
    requirePermission(actor, 'rollouts:manage');
    const definition = defineRollout(input);
    const organizationId = actor.organizationId;
    const now = this.clock.now();
    const id = newId();
    const row = await this.db.transaction().execute(async (trx) => {
      // Read inside the transaction (SQLite has one connection), scoped to the organization.
      const release = await this.publishedRelease(organizationId, definition.releaseId, trx);
      const selected = await this.store.select(organizationId, release.productId, definition.selector, trx);
      const candidates = selected.filter((d) => !d.busy).map((d) => d.id);
      if (candidates.length === 0) throw new RolloutEmptyError({ matched: selected.length, skipped: selected.length });
      const rollout: RolloutRow = {
        id,
        organization_id: organizationId,
        release_id: release.id,
        product_id: release.productId,
        name: definition.name || `${release.version} rollout`,
        selector: JSON.stringify(definition.selector),
        phases: JSON.stringify(definition.phases),
        success_threshold: definition.successThreshold,
        failure_threshold: definition.failureThreshold,
        max_concurrent_downloads: definition.maxConcurrentDownloads,
        offer_timeout_seconds: definition.offerTimeoutSeconds,
        max_attempts: definition.retry.maxAttempts,
        retry_backoff_seconds: definition.retry.backoffSeconds,
        pause_threshold: definition.pauseThreshold,
        pause_cleared_phase: null,
        schedule_window: definition.window ? JSON.stringify(definition.window) : null,
        status: 'running',
        current_phase: 0,
        phase_started_at: now,
        device_count: candidates.length,
        skipped_count: selected.length - candidates.length,
        created_by: actor.userId,
        created_at: now,
        updated_at: now,
        finished_at: null,
      };
      // The rollout row first (enrollments reference it), then the enrollment table's primary key, not
      // the `busy` read above, decides: a device a concurrent create took since is skipped here.
      await this.store.insertRollout(rollout, trx);
      const enrolled = await this.store.enroll(id, candidates, trx);
      const free = candidates.filter((deviceId) => enrolled.has(deviceId));
      const skipped = selected.length - free.length;
      if (free.length === 0) throw new RolloutEmptyError({ matched: selected.length, skipped });
      if (free.length !== candidates.length) {
        rollout.device_count = free.length;
        rollout.skipped_count = skipped;
        await this.store.update(id, { device_count: free.length, skipped_count: skipped }, trx);
      }
      const plan = planPhases(id, free, definition.phases);
      await this.store.insertDevices(
        plan.map((p) => ({
          rollout_id: id,
          device_id: p.deviceId,
          organization_id: organizationId,
          phase: p.phase,
          rank: p.rank,
          state: 'pending',
          error_code: null,
          error_message: null,
          offered_at: null,
          updated_at: now,
          attempts: 0,
          retry_at: null,
        })),
        trx,
      );
      await this.audit.record(
        {
          organizationId,
          actor: auditActor(actor),
          action: 'update.rollout_created',
          target: { type: 'rollout', id },
          sourceIp: actor.sourceIp,
          details: {
            releaseId: release.id,
            version: release.version,
            selector: definition.selector,
            phases: definition.phases,
            enrolled: free.length,
            skipped,
          },
        },
        trx,
      );
      return rollout;
    });
    return { ...view(row), enrolled: row.device_count, skipped: row.skipped_count };
  }

  /** The published release a rollout names; a release its policy refused, or none, is refused with why. */
  private async publishedRelease(organizationId: string, releaseId: string, trx: Executor) {
    const release = await this.releases.find(organizationId, releaseId, trx);
    if (release) return release;
    const refusal = await this.releases.refusal(organizationId, releaseId, trx);
    if (refusal) throw new RolloutReleaseRefusedError(refusal.id, refusal.code, refusal.reason);
    throw new RolloutReleaseNotFoundError(releaseId);
  }

  private async owned(actor: Actor, rolloutId: string, db: Executor = this.db): Promise<RolloutRow> {
    const row = await this.store.get(actor.organizationId, rolloutId, db);
    if (!row) throw new RolloutNotFoundError(rolloutId);
    return row;
  }

  async get(actor: Actor, rolloutId: string): Promise<RolloutDetailView> {
    requirePermission(actor, 'rollouts:read');
    const row = await this.owned(actor, rolloutId);
    return {
      ...view(row),
      counts: await this.store.counts(row.id),
      currentPhaseCounts: await this.store.counts(row.id, this.db, row.current_phase),
      retrying: await this.store.retrying(row.id),
    };
  }

  async list(actor: Actor, query: { cursor?: string }): Promise<{ rollouts: RolloutView[]; nextCursor: string | null }> {
    requirePermission(actor, 'rollouts:read');
    const after = query.cursor
      ? decodeCursor(
          query.cursor,
          (v): v is [number, string] => Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string',
        )
      : undefined;
    const rows = await this.store.list(actor.organizationId, {
      ...(after ? { after: { createdAt: after[0], id: after[1] } } : {}),
      limit: LIST_PAGE + 1,
    });
    const { page, nextCursor } = pageOf(rows, LIST_PAGE, (last) => encodeCursor([Number(last.created_at), last.id]));
    return { rollouts: page.map(view), nextCursor };
  }

  async devicesOf(
    actor: Actor,
    rolloutId: string,
    query: { state?: RolloutDeviceState; cursor?: string; limit?: number },
  ): Promise<{ devices: RolloutDeviceView[]; nextCursor: string | null }> {
    requirePermission(actor, 'rollouts:read');
    const row = await this.owned(actor, rolloutId);
    const limit = query.limit ?? 100;
    const afterDeviceId = query.cursor ? decodeCursor(query.cursor, (v): v is string => typeof v === 'string') : undefined;
    const rows = await this.store.page(row.id, {
      ...(query.state ? { state: query.state } : {}),
      ...(afterDeviceId !== undefined ? { afterDeviceId } : {}),
      limit: limit + 1,
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor(last.device_id));
    return {
      devices: page.map((d) => ({ deviceId: d.device_id, ...progressOf(d) })),
      nextCursor,
    };
  }

  pause(actor: Actor, rolloutId: string): Promise<RolloutView> {
    return this.change(actor, rolloutId, 'pause', ['running'], 'paused', 'update.rollout_paused');
  }

  /**
   * Resumes a paused rollout, or a halted one whose current phase is now below its failure
   * threshold (the operator raised it, or retried the failed devices). A rollout the pause
   * threshold paused does not pause again in the same phase.
   */
  resume(actor: Actor, rolloutId: string): Promise<RolloutView> {
    return this.change(actor, rolloutId, 'resume', ['paused', 'halted'], 'running', 'update.rollout_resumed');
  }

  /** Changes the thresholds, retry policy or schedule window of a rollout that has not finished; audited with before and after. */
  async update(actor: Actor, rolloutId: string, changes: RolloutChanges): Promise<RolloutView> {
    requirePermission(actor, 'rollouts:manage');
    return this.db.transaction().execute(async (trx) => {
      await this.owned(actor, rolloutId, trx);
      const row = (await this.store.lock(rolloutId, trx))!;
      if (!UNFINISHED_STATUSES.includes(row.status)) throw new RolloutStatusError('change', row.status);
      const before = view(row);
      const next = changeRollout(before, changes);
      const updated: Partial<RolloutRow> = {
        success_threshold: next.successThreshold,
        failure_threshold: next.failureThreshold,
        pause_threshold: next.pauseThreshold,
        max_attempts: next.retry.maxAttempts,
        retry_backoff_seconds: next.retry.backoffSeconds,
        schedule_window: next.window ? JSON.stringify(next.window) : null,
        updated_at: this.clock.now(),
      };
      await this.store.update(row.id, updated, trx);
      const pick = (v: RolloutView) => ({
        successThreshold: v.successThreshold,
        failureThreshold: v.failureThreshold,
        pauseThreshold: v.pauseThreshold,
        retry: v.retry,
        window: v.window,
      });
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: auditActor(actor),
          action: 'update.rollout_changed',
          target: { type: 'rollout', id: row.id },
          sourceIp: actor.sourceIp,
          details: { before: pick(before), after: next },
        },
        trx,
      );
      return view({ ...row, ...updated });
    });
  }

  /**
   * Swaps a paused or halted rollout's release for a fixed one: a newer release of the same
   * product. Every device goes back to waiting with its attempts counted afresh (those that
   * installed the old release need the fix too), the rollout starts again at its first phase,
   * paused, for the operator to resume; the director names the new image from the next offer.
   * Audited with both releases and the devices' states before.
   */
  async swapRelease(actor: Actor, rolloutId: string, releaseId: string): Promise<RolloutView> {
    requirePermission(actor, 'rollouts:manage');
    return this.db.transaction().execute(async (trx) => {
      await this.owned(actor, rolloutId, trx);
      const row = (await this.store.lock(rolloutId, trx))!;
      if (row.status !== 'paused' && row.status !== 'halted') throw new RolloutStatusError('swap the release of', row.status);
      const next = await this.publishedRelease(row.organization_id, releaseId, trx);
      const current = (await this.releases.find(row.organization_id, row.release_id, trx))!;
      if (next.productId !== row.product_id)
        throw new RolloutInvalidError(`Release ${releaseId} is of another product: a rollout's release keeps its product`);
      if (!semver.gt(next.version, current.version))
        throw new RolloutInvalidError(`Release ${next.version} is not newer than ${current.version}: swap for a fixed, newer release`);
      const now = this.clock.now();
      const countsBefore = await this.store.counts(row.id, trx);
      await this.store.restart(row.id, now, trx);
      const changes: Partial<RolloutRow> = {
        release_id: next.id,
        status: 'paused',
        current_phase: 0,
        phase_started_at: now,
        pause_cleared_phase: null,
        updated_at: now,
      };
      await this.store.update(row.id, changes, trx);
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: auditActor(actor),
          action: 'update.rollout_release_swapped',
          target: { type: 'rollout', id: row.id },
          sourceIp: actor.sourceIp,
          details: {
            from: { releaseId: current.id, version: current.version },
            to: { releaseId: next.id, version: next.version },
            countsBefore,
          },
        },
        trx,
      );
      return view({ ...row, ...changes });
    });
  }

  /**
   * An operator's retry of devices that failed or rolled back (all of them, or those named): each
   * waits for a new offer with its attempts counted afresh. Audited with the devices retried.
   */
  async retry(actor: Actor, rolloutId: string, query: { deviceIds?: string[] }): Promise<{ retried: string[] }> {
    requirePermission(actor, 'rollouts:manage');
    return this.db.transaction().execute(async (trx) => {
      await this.owned(actor, rolloutId, trx);
      const row = (await this.store.lock(rolloutId, trx))!;
      if (!UNFINISHED_STATUSES.includes(row.status)) throw new RolloutStatusError('retry devices of', row.status);
      const retried = await this.store.retryNow(row.id, query.deviceIds ?? null, this.clock.now(), trx);
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: auditActor(actor),
          action: 'update.rollout_devices_retried',
          target: { type: 'rollout', id: row.id },
          sourceIp: actor.sourceIp,
          details: { count: retried.length, deviceIds: retried.slice(0, 100) },
        },
        trx,
      );
      return { retried: retried.sort() };
    });
  }

  /** Aborts: no new offers, and the director stops naming the release for every device that has not succeeded (told to fetch again). */
  async abort(actor: Actor, rolloutId: string): Promise<RolloutView> {
    const aborted = await this.change(actor, rolloutId, 'abort', ['running', 'paused', 'halted'], 'aborted', 'update.rollout_aborted');
    for (const deviceId of await this.store.offeredNotSucceeded(aborted.id))
      await this.link.publishToDevice(deviceId, UPDATE_TOPICS.available, { rolloutId: aborted.id });
    return aborted;
  }

  private async change(
    actor: Actor,
    rolloutId: string,
    action: string,
    from: RolloutStatus[],
    to: RolloutStatus,
    auditAction: string,
  ): Promise<RolloutView> {
    requirePermission(actor, 'rollouts:manage');
    return this.db.transaction().execute(async (trx) => {
      await this.owned(actor, rolloutId, trx);
      const row = (await this.store.lock(rolloutId, trx))!;
      if (!from.includes(row.status)) throw new RolloutStatusError(action, row.status);
      const now = this.clock.now();
      const changes: Partial<RolloutRow> = { status: to, updated_at: now, ...(to === 'aborted' ? { finished_at: now } : {}) };
      if (action === 'resume') {
        const counts = await this.store.counts(row.id, trx, row.current_phase);
        const rate = failureRate(counts);
        if (row.status === 'halted' && rate >= Number(row.failure_threshold))
          throw new RolloutStillFailingError(rate, Number(row.failure_threshold));
        // Resumed past the pause threshold: it does not pause this phase again (the operator has seen it).
        if (row.pause_threshold !== null && rate >= Number(row.pause_threshold)) changes.pause_cleared_phase = row.current_phase;
      }
      await this.store.update(row.id, changes, trx);
      if (to === 'aborted') await this.store.unenroll(row.id, trx);
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: auditActor(actor),
          action: auditAction,
          target: { type: 'rollout', id: row.id },
          sourceIp: actor.sourceIp,
          details: { from: row.status, counts: await this.store.counts(row.id, trx) },
        },
        trx,
      );
      return view({ ...row, ...changes });
    });
  }

  /** One pass over running rollouts: halt, advance, offer. Never overlaps itself: a call during a pass shares that pass. */
  tick(): Promise<TickResult> {
    this.ticking ??= this.pass().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async pass(): Promise<TickResult> {
    const running = await this.store.runningIds();
    const failures: unknown[] = [];
    const result: TickResult = { offered: 0, withdrawn: 0, silent: 0 };
    for (const id of running) {
      // One broken rollout must not stop the others from advancing or halting.
      try {
        const stepped = await this.step(id);
        result.offered += stepped.offered;
        result.withdrawn += stepped.withdrawn;
        result.silent += stepped.silent;
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length) throw new AggregateError(failures, `${failures.length} rollout(s) failed to step`);
    return result;
  }

  private async step(rolloutId: string): Promise<TickResult> {
    const { offered, withdrawn, silent } = await this.db.transaction().execute(async (trx) => {
      let row = await this.store.lock(rolloutId, trx);
      if (!row || row.status !== 'running') return { offered: [], withdrawn: 0, silent: 0 };
      const now = this.clock.now();
      // Timed-out offers first: their slots are free for this pass, and silent failures count toward the halt
      // (unless the device has attempts left: going silent is transient, so it waits for a retry instead).
      const timedOut = await this.store.expireOffers(row.id, now - Number(row.offer_timeout_seconds) * 1000, now, trx);
      const policy = retryPolicyOf(row);
      // One statement per distinct retry time (devices with as many attempts behind them share one), not one per device.
      const retries = new Map<number, string[]>();
      for (const { deviceId, attempts } of timedOut.silent) {
        const retryAt = retryAtAfter(policy, attempts, now);
        if (retryAt === null) continue;
        const group = retries.get(retryAt);
        if (group) group.push(deviceId);
        else retries.set(retryAt, [deviceId]);
      }
      for (const [retryAt, deviceIds] of retries) await this.store.retryLater(row.id, deviceIds, retryAt, DEVICE_SILENT, now, trx);
      const expired = { withdrawn: timedOut.withdrawn, silent: timedOut.silent.length };
      row = await this.evaluate(row, trx);
      if (row.status !== 'running') return { offered: [], ...expired };
      if (!insideWindow(scheduleWindowOf(row), now)) return { offered: [], ...expired };
      const room = row.max_concurrent_downloads - (await this.store.inFlight(row.id, trx));
      if (room <= 0) return { offered: [], ...expired };
      const next = await this.store.waiting(row.id, { maxPhase: row.current_phase, limit: room, now }, trx);
      await this.store.markOffered(row.id, next, now, trx);
      return { offered: next, ...expired };
    });
    for (const deviceId of offered) await this.link.publishToDevice(deviceId, UPDATE_TOPICS.available, { rolloutId });
    return { offered: offered.length, withdrawn, silent };
  }

  /**
   * Halts past the failure threshold, pauses past the pause threshold (once per phase); advances
   * (or completes) once the phase's successes reach the threshold and its soak passed.
   */
  private async evaluate(row: RolloutRow, trx: Executor): Promise<RolloutRow> {
    const counts = await this.store.counts(row.id, trx, row.current_phase);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const failed = counts.failed + counts.rolled_back;
    const now = this.clock.now();
    const system = { type: 'system' as const, id: null };
    const pauseAt = row.pause_threshold === null ? null : Number(row.pause_threshold);
    if (
      pauseAt !== null &&
      total > 0 &&
      failed / total >= pauseAt &&
      failed / total < Number(row.failure_threshold) &&
      row.pause_cleared_phase !== row.current_phase
    ) {
      await this.store.update(row.id, { status: 'paused', updated_at: now }, trx);
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: system,
          action: 'update.rollout_paused',
          target: { type: 'rollout', id: row.id },
          details: {
            reason: 'pause_threshold',
            phase: row.current_phase,
            devices: total,
            failed: counts.failed,
            rolledBack: counts.rolled_back,
            pauseThreshold: pauseAt,
          },
        },
        trx,
      );
      return { ...row, status: 'paused', updated_at: now };
    }
    if (total > 0 && failed / total >= Number(row.failure_threshold)) {
      await this.store.update(row.id, { status: 'halted', updated_at: now }, trx);
      await this.audit.record(
        {
          organizationId: row.organization_id,
          actor: system,
          action: 'update.rollout_halted',
          target: { type: 'rollout', id: row.id },
          details: {
            phase: row.current_phase,
            devices: total,
            failed: counts.failed,
            rolledBack: counts.rolled_back,
            succeeded: counts.succeeded,
            failureThreshold: Number(row.failure_threshold),
          },
        },
        trx,
      );
      return { ...row, status: 'halted', updated_at: now };
    }
    const phases = JSON.parse(row.phases) as RolloutPhase[];
    const soaked = now - Number(row.phase_started_at) >= phases[row.current_phase]!.soakSeconds * 1000;
    if (!soaked || (total > 0 && counts.succeeded / total < Number(row.success_threshold))) return row;
    const last = row.current_phase >= phases.length - 1;
    const changes: Partial<RolloutRow> = last
      ? { status: 'completed', finished_at: now, updated_at: now }
      : { current_phase: row.current_phase + 1, phase_started_at: now, updated_at: now };
    await this.store.update(row.id, changes, trx);
    if (last) await this.store.unenroll(row.id, trx);
    await this.audit.record(
      {
        organizationId: row.organization_id,
        actor: system,
        action: last ? 'update.rollout_completed' : 'update.rollout_phase_advanced',
        target: { type: 'rollout', id: row.id },
        details: {
          phase: row.current_phase,
          ...(last ? {} : { nextPhase: row.current_phase + 1 }),
          devices: total,
          succeeded: counts.succeeded,
        },
      },
      trx,
    );
    return { ...row, ...changes };
  }

  /**
   * A device fetching its director targets: if it waits in a running rollout whose phase has
   * reached it and the cap has room, it is offered now (it is online, by definition), then its
   * current metadata is returned.
   */
  async directorTargets(identity: DeviceIdentity): Promise<SignedDirectorTargets> {
    // One read for the common case (offered already, or nothing to offer); a second after an offer.
    let state = await this.director.stateOf(identity.organizationId, identity.deviceId);
    if (!state) throw new NotFoundError('Device');
    const waiting = state.latest;
    if (waiting && waiting.status === 'running' && waiting.offeredAt === null) {
      const offered = await this.db.transaction().execute(async (trx) => {
        const row = await this.store.lock(waiting.rolloutId, trx);
        if (!row || row.status !== 'running') return false;
        const now = this.clock.now();
        if (!insideWindow(scheduleWindowOf(row), now)) return false;
        if ((await this.store.inFlight(row.id, trx)) >= row.max_concurrent_downloads) return false;
        const next = await this.store.waiting(row.id, { maxPhase: row.current_phase, limit: 1, now, deviceId: identity.deviceId }, trx);
        await this.store.markOffered(row.id, next, now, trx);
        return next.length > 0;
      });
      if (offered) state = await this.director.stateOf(identity.organizationId, identity.deviceId);
      if (!state) throw new NotFoundError('Device');
    }
    return this.director.targetsFor(state);
  }

  /** A message a device published on `d/<id>/updates/<channel>`; a refusal (DeviceMessageRefusal) goes back on its error topic. */
  deviceMessage(identity: DeviceIdentity, channel: string, payload: Buffer): Promise<void> {
    return this.inbox.message(identity, channel, payload);
  }

  /** A device's latest signed version report and its state in its most recent rollout. */
  async deviceUpdates(actor: Actor, deviceId: string) {
    requirePermission(actor, 'rollouts:read');
    const device = await this.reports.device(actor.organizationId, deviceId);
    if (!device) throw new NotFoundError('Device');
    const report = await this.reports.versionReport(device.id);
    const rollout = await this.store.latestOf(actor.organizationId, device.id);
    return {
      deviceId: device.id,
      firmwareVersion: device.firmware_version,
      report: report ? { ...(JSON.parse(report.report) as VersionReport), receivedAt: iso(report.received_at)! } : null,
      rollout: rollout
        ? {
            id: rollout.id,
            status: rollout.status,
            releaseId: rollout.release_id,
            version: rollout.version,
            target: rollout.target_name,
            ...progressOf(rollout),
          }
        : null,
    };
  }
}
