/**
 * The director's table (director_targets: the metadata last signed for each device) through
 * Kysely, and the one-round-trip read of what the director knows of a device (its product, its
 * latest rollout with that rollout's release, its stored metadata). Writes are conditional on the
 * stored version, so two requests of one device sign each version once.
 */
import type { DirectorTargetsTable } from '../storage/rollout-tables.js';
import { latestRolloutFirst } from './rollout-store.js';
import type { Executor } from '../storage/executor.js';

export class DirectorStore {
  constructor(readonly db: Executor) {}

  /** The device's row (null when it does not exist in the organization) joined with its latest rollout, release and stored metadata. */
  stateRow(organizationId: string, deviceId: string, db: Executor = this.db) {
    return db
      .selectFrom('devices as d')
      .innerJoin('products as p', 'p.id', 'd.product_id')
      .leftJoin('rollout_devices as rd', (join) =>
        join
          .onRef('rd.device_id', '=', 'd.id')
          .onRef('rd.organization_id', '=', 'd.organization_id')
          .on((eb) =>
            eb(
              'rd.rollout_id',
              '=',
              eb
                .selectFrom('rollout_devices as l')
                .innerJoin('rollouts as lr', 'lr.id', 'l.rollout_id')
                .select('l.rollout_id')
                .whereRef('l.device_id', '=', 'd.id')
                .whereRef('l.organization_id', '=', 'd.organization_id')
                .$call(latestRolloutFirst('lr'))
                .limit(1),
            ),
          ),
      )
      .leftJoin('rollouts as r', 'r.id', 'rd.rollout_id')
      .leftJoin('firmware_releases as f', 'f.id', 'r.release_id')
      .leftJoin('director_targets as t', 't.device_id', 'd.id')
      .select([
        'd.id',
        'd.attributes',
        'p.hardware_revision',
        'r.id as rollout_id',
        'r.status as rollout_status',
        'rd.state',
        'rd.offered_at',
        'f.target_name',
        'f.sha256',
        'f.length',
        'f.hardware_ids',
        't.device_id as stored_device_id',
        't.organization_id as stored_organization_id',
        't.version as stored_version',
        't.metadata as stored_metadata',
        't.target_name as stored_target_name',
        't.rollout_id as stored_rollout_id',
        't.hardware_id as stored_hardware_id',
        't.signed_at as stored_signed_at',
        't.expires_at as stored_expires_at',
      ])
      .where('d.id', '=', deviceId)
      .where('d.organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  storedTargets(deviceId: string, db: Executor = this.db): Promise<DirectorTargetsTable | undefined> {
    return db.selectFrom('director_targets').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  /** Replaces the device's metadata if it is still at `version`; whether it was. */
  async replaceTargets(
    deviceId: string,
    version: number,
    row: Omit<DirectorTargetsTable, 'device_id'>,
    db: Executor = this.db,
  ): Promise<boolean> {
    const result = await db
      .updateTable('director_targets')
      .set(row)
      .where('device_id', '=', deviceId)
      .where('version', '=', version)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Stores the device's first metadata unless another request stored one first; whether it did. */
  async insertTargets(row: DirectorTargetsTable, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .insertInto('director_targets')
      .values(row)
      .onConflict((oc) => oc.column('device_id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows) === 1;
  }
}
