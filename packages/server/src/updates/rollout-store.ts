/**
 * The rollout tables through Kysely: the device snapshot of a new rollout, counts per state, the
 * offer queue in rank order, and per-device rows. Every method takes the executor so a caller's
 * transaction is used throughout (SQLite has one connection).
 */
import { sql, type ExpressionBuilder, type Kysely, type SelectQueryBuilder } from 'kysely';
import { ROLLOUT_DEVICE_STATES, type RolloutDeviceState, type RolloutStateCounts } from '@bulwark/protocol';
import type { Database } from '../storage/schema.js';
import type { RolloutSelector } from './rollout-model.js';
import type { RolloutDevicesTable, RolloutsTable } from '../storage/rollout-tables.js';
import type { Executor } from '../storage/executor.js';
import { PreparedQueries } from '../storage/prepared.js';

export type RolloutRow = RolloutsTable;
export type RolloutDeviceRow = RolloutDevicesTable;

/** Statuses of a rollout that still holds its devices: a device in one of these is not enrolled in another. */
export const UNFINISHED = ['running', 'paused', 'halted'] as const;
export const FINISHED_STATES: RolloutDeviceState[] = ['succeeded', 'failed', 'rolled_back'];
const ENROLLABLE = ['active', 'quarantined'] as const;
/** States of a device that started installing and reports its progress. */
const STARTED_STATES: RolloutDeviceState[] = ['downloading', 'installing', 'rebooting', 'verifying'];
const INSERT_BATCH = 500;
/** The failure of a device that started and then stayed silent past the offer timeout (transient: retried when attempts are left). */
export const DEVICE_SILENT = {
  code: 'update.device_silent',
  message: 'The device stopped reporting its update progress within the offer timeout',
} as const;

/**
 * Orders a device's rollouts (the rollouts table under `alias`) latest first: newest, and of two
 * created in the same millisecond the unfinished one (the first has ended: a device is never in two
 * unfinished rollouts). The one rule for "the device's latest rollout", here and in the director.
 */
export function latestRolloutFirst(alias: 'r' | 'lr') {
  return <DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> =>
    query
      .orderBy(sql.ref(`${alias}.created_at`), 'desc')
      .orderBy(sql`case when ${sql.ref(`${alias}.status`)} in ('running', 'paused') then 0 else 1 end`)
      .orderBy(sql.ref(`${alias}.id`), 'desc');
}

/** A device's reported move in a rollout: to `state`, from one of `from`, for the rollout's target. */
export interface ProgressMove {
  rolloutId: string;
  organizationId: string;
  deviceId: string;
  target: string;
  state: RolloutDeviceState;
  from: RolloutDeviceState[];
}

export function emptyCounts(): RolloutStateCounts {
  return Object.fromEntries(ROLLOUT_DEVICE_STATES.map((state) => [state, 0])) as RolloutStateCounts;
}

export class RolloutStore {
  /** The statements each device's progress runs: built and compiled once (storage/prepared.ts). */
  private readonly prepared = new PreparedQueries();

  constructor(readonly db: Kysely<Database>) {}

  /**
   * Devices of the product in the organization, active or quarantined, matching any criterion of
   * the selector, each with whether it is already in an unfinished rollout.
   */
  async select(
    organizationId: string,
    productId: string,
    selector: RolloutSelector,
    db: Executor = this.db,
  ): Promise<{ id: string; busy: boolean }[]> {
    const rows = await db
      .selectFrom('devices')
      .select((eb) => [
        'devices.id',
        eb
          .exists(
            eb
              .selectFrom('rollout_devices as rd')
              .innerJoin('rollouts as r', 'r.id', 'rd.rollout_id')
              .select('rd.device_id')
              .whereRef('rd.device_id', '=', 'devices.id')
              .where('r.status', 'in', [...UNFINISHED]),
          )
          .as('busy'),
      ])
      .where('devices.organization_id', '=', organizationId)
      .where('devices.product_id', '=', productId)
      .where('devices.status', 'in', [...ENROLLABLE])
      .where((eb) => {
        const any = [];
        if (selector.groups) any.push(eb('devices.group_name', 'in', selector.groups));
        if (selector.deviceIds) any.push(eb('devices.id', 'in', selector.deviceIds));
        if (selector.firmwareVersions) any.push(eb('devices.firmware_version', 'in', selector.firmwareVersions));
        if (selector.tags) {
          any.push(
            eb(
              'devices.id',
              'in',
              eb
                .selectFrom('device_tags')
                .select('device_tags.device_id')
                .where('device_tags.organization_id', '=', organizationId)
                .where('device_tags.tag', 'in', selector.tags),
            ),
          );
        }
        return eb.or(any);
      })
      .execute();
    return rows.map((r) => ({ id: r.id, busy: Boolean(Number(r.busy)) }));
  }

  async insertRollout(rollout: RolloutRow, db: Executor): Promise<void> {
    await db.insertInto('rollouts').values(rollout).execute();
  }

  async insertDevices(devices: RolloutDeviceRow[], db: Executor): Promise<void> {
    for (let i = 0; i < devices.length; i += INSERT_BATCH)
      await db
        .insertInto('rollout_devices')
        .values(devices.slice(i, i + INSERT_BATCH))
        .execute();
  }

  get(organizationId: string, rolloutId: string, db: Executor = this.db) {
    return db
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', rolloutId)
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  /**
   * Locks the rollout row for the rest of the transaction (an update takes the row lock on
   * PostgreSQL; SQLite has one writer anyway), so two nodes or a tick and a device fetch never
   * offer past the cap or advance a phase twice. Returns the row as locked.
   */
  async lock(rolloutId: string, db: Executor): Promise<RolloutRow | undefined> {
    await db
      .updateTable('rollouts')
      .set((eb) => ({ updated_at: eb.ref('updated_at') }))
      .where('id', '=', rolloutId)
      .execute();
    return db.selectFrom('rollouts').selectAll().where('id', '=', rolloutId).executeTakeFirst();
  }

  async update(rolloutId: string, changes: Partial<RolloutRow>, db: Executor): Promise<void> {
    await db.updateTable('rollouts').set(changes).where('id', '=', rolloutId).execute();
  }

  /** Devices per state, of the whole rollout or of the phases up to `maxPhase`. */
  async counts(rolloutId: string, db: Executor = this.db, maxPhase?: number): Promise<RolloutStateCounts> {
    const rows = await db
      .selectFrom('rollout_devices')
      .select((eb) => ['state', eb.fn.countAll<number>().as('n')])
      .where('rollout_id', '=', rolloutId)
      .$if(maxPhase !== undefined, (q) => q.where('phase', '<=', maxPhase!))
      .groupBy('state')
      .execute();
    const counts = emptyCounts();
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  /** Devices offered the release that have not finished (succeeded, failed or rolled back). */
  async inFlight(rolloutId: string, db: Executor): Promise<number> {
    const row = await db
      .selectFrom('rollout_devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId)
      .where('offered_at', 'is not', null)
      .where('state', 'not in', FINISHED_STATES)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * The next devices to offer, in phase and rank order, still active or quarantined, leaving out
   * those whose retry backoff has not passed at `now`.
   */
  async waiting(
    rolloutId: string,
    query: { maxPhase: number; limit: number; now: number; deviceId?: string },
    db: Executor,
  ): Promise<string[]> {
    const rows = await db
      .selectFrom('rollout_devices as rd')
      .innerJoin('devices as d', 'd.id', 'rd.device_id')
      .select('rd.device_id')
      .where('rd.rollout_id', '=', rolloutId)
      .where('rd.phase', '<=', query.maxPhase)
      .where('rd.offered_at', 'is', null)
      .where('rd.state', '=', 'pending')
      .where((eb) => eb.or([eb('rd.retry_at', 'is', null), eb('rd.retry_at', '<=', query.now)]))
      .where('d.status', 'in', [...ENROLLABLE])
      .$if(query.deviceId !== undefined, (q) => q.where('rd.device_id', '=', query.deviceId!))
      // Never-offered devices share the rollout's creation time, so they go in phase and rank order;
      // a device whose offer timed out (or that waits for a retry) was touched later and waits behind them.
      .orderBy('rd.updated_at')
      .orderBy('rd.phase')
      .orderBy('rd.rank')
      .limit(query.limit)
      .execute();
    return rows.map((r) => r.device_id);
  }

  /** Each offer counts as an attempt. */
  async markOffered(rolloutId: string, deviceIds: string[], now: number, db: Executor): Promise<void> {
    if (deviceIds.length === 0) return;
    await db
      .updateTable('rollout_devices')
      .set((eb) => ({ offered_at: now, updated_at: now, retry_at: null, attempts: eb('attempts', '+', 1) }))
      .where('rollout_id', '=', rolloutId)
      .where('device_id', 'in', deviceIds)
      .execute();
  }

  /**
   * A device's progress report in one statement (the common case of a status message): the row
   * moves to `state` only if the device was offered the release, the rollout installs `target`,
   * and its current state is one of `from`; on success, the device's firmware version becomes the
   * release's in the same transaction. False when nothing moved: the caller reads the row to say why.
   */
  async advance(move: ProgressMove, error: { code: string; message: string } | null, now: number, db: Executor): Promise<boolean> {
    const release = (eb: ExpressionBuilder<Database, 'rollout_devices' | 'devices'>, rolloutId: string) =>
      eb.selectFrom('rollouts as r').innerJoin('firmware_releases as f', 'f.id', 'r.release_id').where('r.id', '=', rolloutId);
    // Five of these a device's update: compiled once per target state (its `from` list is the shape's).
    const args = [
      move.state,
      error?.code ?? null,
      error?.message ?? null,
      now,
      move.rolloutId,
      move.deviceId,
      move.organizationId,
      move.target,
    ] as const;
    const moved = await this.prepared.execute(
      db,
      `advance:${move.from.join(',')}`,
      args,
      (state, code, message, at, rollout, device, org, target) =>
        db
          .updateTable('rollout_devices')
          .set({ state, error_code: code, error_message: message, updated_at: at })
          .where('rollout_id', '=', rollout)
          .where('device_id', '=', device)
          .where('organization_id', '=', org)
          .where('offered_at', 'is not', null)
          .where('state', 'in', move.from)
          .where((eb) => eb.exists(release(eb, rollout).select('f.id').where('f.target_name', '=', target))),
    );
    if (Number(moved.numAffectedRows) !== 1) return false;
    if (move.state === 'succeeded')
      await this.prepared.execute(
        db,
        'firmwareOfRelease',
        [now, move.rolloutId, move.deviceId, move.organizationId],
        (at, rollout, device, org) =>
          db
            .updateTable('devices')
            .set((eb) => ({ firmware_version: release(eb, rollout).select('f.version'), updated_at: at }))
            .where('id', '=', device)
            .where('organization_id', '=', org),
      );
    return true;
  }

  /** Sets a device's state in the rollout and its error (or none), unconditionally: the caller has read the row and checked the move. */
  async setState(
    rolloutId: string,
    deviceId: string,
    state: RolloutDeviceState,
    error: { code: string; message: string } | null,
    now: number,
    db: Executor,
  ): Promise<void> {
    await db
      .updateTable('rollout_devices')
      .set({ state, error_code: error?.code ?? null, error_message: error?.message ?? null, updated_at: now })
      .where('rollout_id', '=', rolloutId)
      .where('device_id', '=', deviceId)
      .execute();
  }

  /** IDs of the running rollouts, oldest first. */
  async runningIds(db: Executor = this.db): Promise<string[]> {
    const rows = await db.selectFrom('rollouts').select('id').where('status', '=', 'running').orderBy('created_at').execute();
    return rows.map((r) => r.id);
  }

  /**
   * Puts devices that failed for a transient reason back to waiting, not offered before `retryAt`
   * (the director withdraws the release until then), 500 devices a statement; their error stays as
   * the last one seen.
   */
  async retryLater(
    rolloutId: string,
    deviceIds: string[],
    retryAt: number,
    error: { code: string; message: string },
    now: number,
    db: Executor,
  ): Promise<void> {
    for (let i = 0; i < deviceIds.length; i += INSERT_BATCH)
      await db
        .updateTable('rollout_devices')
        .set({
          state: 'pending',
          offered_at: null,
          retry_at: retryAt,
          error_code: error.code,
          error_message: error.message,
          updated_at: now,
        })
        .where('rollout_id', '=', rolloutId)
        .where('device_id', 'in', deviceIds.slice(i, i + INSERT_BATCH))
        .execute();
  }

  /** Every device of the rollout back to waiting, never offered, attempts and errors cleared (a swapped release starts over). */
  async restart(rolloutId: string, now: number, db: Executor): Promise<void> {
    await db
      .updateTable('rollout_devices')
      .set({ state: 'pending', offered_at: null, retry_at: null, attempts: 0, error_code: null, error_message: null, updated_at: now })
      .where('rollout_id', '=', rolloutId)
      .execute();
  }

  /** An operator's retry: the given failed or rolled-back devices wait for a new offer, with their attempts counted afresh. */
  async retryNow(rolloutId: string, deviceIds: string[] | null, now: number, db: Executor): Promise<string[]> {
    const rows = await db
      .updateTable('rollout_devices')
      .set({ state: 'pending', offered_at: null, retry_at: null, attempts: 0, updated_at: now })
      .where('rollout_id', '=', rolloutId)
      .where('state', 'in', ['failed', 'rolled_back'])
      .$if(deviceIds !== null, (q) => q.where('device_id', 'in', deviceIds!))
      .returning('device_id')
      .execute();
    return rows.map((r) => r.device_id);
  }

  /** Devices waiting for an automatic retry (pending after a transient failure). */
  async retrying(rolloutId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('rollout_devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId)
      .where('state', '=', 'pending')
      .where('attempts', '>', 0)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Offers that timed out (offered before `cutoff` and silent since): devices still pending
   * go back to waiting (the director withdraws the release when they next fetch), devices that
   * started are failed with `update.device_silent`. Both free their download slot.
   */
  async expireOffers(
    rolloutId: string,
    cutoff: number,
    now: number,
    db: Executor,
  ): Promise<{ withdrawn: number; silent: { deviceId: string; attempts: number }[] }> {
    // An offer the device never took up is not an attempt: it is offered again without using one up.
    const withdrawn = await db
      .updateTable('rollout_devices')
      .set((eb) => ({ offered_at: null, updated_at: now, attempts: eb('attempts', '-', 1) }))
      .where('rollout_id', '=', rolloutId)
      .where('state', '=', 'pending')
      .where('offered_at', '<', cutoff)
      .executeTakeFirst();
    const silent = await db
      .updateTable('rollout_devices')
      .set({ state: 'failed', error_code: DEVICE_SILENT.code, error_message: DEVICE_SILENT.message, updated_at: now })
      .where('rollout_id', '=', rolloutId)
      .where('state', 'in', STARTED_STATES)
      .where('offered_at', 'is not', null)
      .where('updated_at', '<', cutoff)
      .returning(['device_id', 'attempts'])
      .execute();
    return {
      withdrawn: Number(withdrawn.numUpdatedRows),
      silent: silent.map((r) => ({ deviceId: r.device_id, attempts: Number(r.attempts) })),
    };
  }

  /** Enrolls devices in a rollout unless already enrolled in another; returns those enrolled (the primary key decides, so concurrent creates cannot both take one). */
  async enroll(rolloutId: string, deviceIds: string[], db: Executor): Promise<Set<string>> {
    const enrolled = new Set<string>();
    // Sorted, so two transactions lock the rows they contend for in the same order (no deadlock on PostgreSQL).
    const sorted = [...deviceIds].sort();
    for (let i = 0; i < sorted.length; i += INSERT_BATCH) {
      const rows = await db
        .insertInto('rollout_active_devices')
        .values(sorted.slice(i, i + INSERT_BATCH).map((deviceId) => ({ device_id: deviceId, rollout_id: rolloutId })))
        .onConflict((oc) => oc.column('device_id').doNothing())
        .returning('device_id')
        .execute();
      for (const row of rows) enrolled.add(row.device_id);
    }
    return enrolled;
  }

  /** Releases a finished (completed or aborted) rollout's devices for later rollouts. */
  async unenroll(rolloutId: string, db: Executor): Promise<void> {
    await db.deleteFrom('rollout_active_devices').where('rollout_id', '=', rolloutId).execute();
  }

  /** Devices offered the release that have not succeeded: told to fetch their (now empty) director targets after an abort. */
  async offeredNotSucceeded(rolloutId: string, db: Executor = this.db): Promise<string[]> {
    const rows = await db
      .selectFrom('rollout_devices')
      .select('device_id')
      .where('rollout_id', '=', rolloutId)
      .where('offered_at', 'is not', null)
      .where('state', '!=', 'succeeded')
      .execute();
    return rows.map((r) => r.device_id);
  }

  /** A device's rows in rollouts (`rd`), each with its rollout (`r`) and that rollout's release (`f`). */
  private deviceRollouts(db: Executor) {
    return db
      .selectFrom('rollout_devices as rd')
      .innerJoin('rollouts as r', 'r.id', 'rd.rollout_id')
      .innerJoin('firmware_releases as f', 'f.id', 'r.release_id');
  }

  device(rolloutId: string, organizationId: string, deviceId: string, db: Executor = this.db) {
    return this.deviceRollouts(db)
      .select([
        'rd.state',
        'rd.offered_at',
        'rd.attempts',
        'r.status',
        'r.max_attempts',
        'r.retry_backoff_seconds',
        'f.target_name',
        'f.version',
      ])
      .where('rd.rollout_id', '=', rolloutId)
      .where('rd.device_id', '=', deviceId)
      .where('rd.organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  /** The device's most recent rollout, with its row. */
  latestOf(organizationId: string, deviceId: string, db: Executor = this.db) {
    return this.deviceRollouts(db)
      .select([
        'r.id',
        'r.status',
        'r.release_id',
        'f.version',
        'f.target_name',
        'rd.phase',
        'rd.state',
        'rd.error_code',
        'rd.error_message',
        'rd.offered_at',
        'rd.updated_at',
        'rd.attempts',
        'rd.retry_at',
      ])
      .where('rd.device_id', '=', deviceId)
      .where('rd.organization_id', '=', organizationId)
      .$call(latestRolloutFirst('r'))
      .limit(1)
      .executeTakeFirst();
  }

  /** A page of a rollout's devices by device ID (keyset: after `afterDeviceId`). */
  page(rolloutId: string, query: { state?: RolloutDeviceState; afterDeviceId?: string; limit: number }, db: Executor = this.db) {
    return db
      .selectFrom('rollout_devices')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .$if(query.state !== undefined, (q) => q.where('state', '=', query.state!))
      .$if(query.afterDeviceId !== undefined, (q) => q.where('device_id', '>', query.afterDeviceId!))
      .orderBy('device_id')
      .limit(query.limit)
      .execute();
  }

  /** A page of the organization's rollouts, newest first (keyset on created_at, id). */
  list(organizationId: string, query: { after?: { createdAt: number; id: string }; limit: number }, db: Executor = this.db) {
    return db
      .selectFrom('rollouts')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .$if(query.after !== undefined, (q) =>
        q.where((eb) =>
          eb.or([
            eb('created_at', '<', query.after!.createdAt),
            eb.and([eb('created_at', '=', query.after!.createdAt), eb('id', '<', query.after!.id)]),
          ]),
        ),
      )
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(query.limit)
      .execute();
  }
}
