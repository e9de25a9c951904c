/**
 * The shadow tables: `device_shadows` (one row per device: both sides with their versions) and
 * `device_shadow_history` (every change). The service (devices/shadow.ts) holds the rules and the
 * transaction; each method takes the transaction's executor when it runs inside one.
 */
import type { Kysely } from 'kysely';
import type { Database, DeviceShadowHistoryTable, DeviceShadowsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type ShadowSide = 'reported' | 'desired';

export class ShadowStore {
  constructor(readonly db: Kysely<Database>) {}

  row(deviceId: string, db: Executor = this.db): Promise<DeviceShadowsTable | undefined> {
    return db.selectFrom('device_shadows').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  /** Creates the device's row as `empty` unless it exists. */
  async ensure(empty: DeviceShadowsTable, db: Executor): Promise<void> {
    await db
      .insertInto('device_shadows')
      .values(empty)
      .onConflict((oc) => oc.column('device_id').doNothing())
      .execute();
  }

  /** Writes one side at `version` if it is still at `version - 1` (optimistic concurrency); false when someone changed it first. */
  async setSide(deviceId: string, side: ShadowSide, text: string, version: number, at: number, db: Executor): Promise<boolean> {
    const changed =
      side === 'reported'
        ? await db
            .updateTable('device_shadows')
            .set({ reported: text, reported_version: version, reported_at: at })
            .where('device_id', '=', deviceId)
            .where('reported_version', '=', version - 1)
            .executeTakeFirst()
        : await db
            .updateTable('device_shadows')
            .set({ desired: text, desired_version: version, desired_at: at })
            .where('device_id', '=', deviceId)
            .where('desired_version', '=', version - 1)
            .executeTakeFirst();
    return Number(changed.numUpdatedRows) === 1;
  }

  async appendHistory(row: DeviceShadowHistoryTable, db: Executor): Promise<void> {
    await db.insertInto('device_shadow_history').values(row).execute();
  }

  /** A device's changes, newest first. */
  history(deviceId: string, options: { kind?: ShadowSide; beforeVersion?: number; limit: number }): Promise<DeviceShadowHistoryTable[]> {
    let query = this.db.selectFrom('device_shadow_history').selectAll().where('device_id', '=', deviceId);
    if (options.kind) query = query.where('kind', '=', options.kind);
    if (options.beforeVersion !== undefined) query = query.where('version', '<', options.beforeVersion);
    return query.orderBy('changed_at', 'desc').orderBy('version', 'desc').limit(options.limit).execute();
  }
}
