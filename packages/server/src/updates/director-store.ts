/**
 * The director's table (director_targets: the metadata last signed for each device) through
 * Kysely, and the one-round-trip read of what the director knows of a device (its product, its
 * latest rollout with that rollout's release, its stored metadata). Writes are conditional on the
 * stored version, so two requests of one device sign each version once.
 */
import type { DirectorTargetsTable } from '../storage/rollout-tables.js';
import { latestRolloutFirst } from './rollout-store.js';
import type { Executor } from '../storage/executor.js';
import { PreparedQueries } from '../storage/prepared.js';

export class DirectorStore {
  /** Every director fetch runs these: built and compiled once (storage/prepared.ts). */
  private readonly prepared = new PreparedQueries();

  constructor(readonly db: Executor) {}

  /** The device's row (null when it does not exist in the organization) joined with its latest rollout, release and stored metadata. */
  async stateRow(organizationId: string, deviceId: string, db: Executor = this.db) {
    const result = await this.prepared.execute(db, 'stateRow', [organizationId, deviceId], (org, device) =>
      db
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
        .where('d.id', '=', device)
        .where('d.organization_id', '=', org),
    );
    return result.rows[0];
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
    const result = await this.prepared.execute(
      db,
      'replaceTargets',
      [deviceId, version, ...fieldsOf(row)],
      (device, stored, ...fields: StoredFields) =>
        db.updateTable('director_targets').set(columnsOf(fields)).where('device_id', '=', device).where('version', '=', stored),
    );
    return Number(result.numAffectedRows) === 1;
  }

  /** Stores the device's first metadata unless another request stored one first; whether it did. */
  async insertTargets(row: DirectorTargetsTable, db: Executor = this.db): Promise<boolean> {
    const result = await this.prepared.execute(db, 'insertTargets', [row.device_id, ...fieldsOf(row)], (device, ...fields: StoredFields) =>
      db
        .insertInto('director_targets')
        .values({ device_id: device, ...columnsOf(fields) })
        .onConflict((oc) => oc.column('device_id').doNothing()),
    );
    return Number(result.numAffectedRows) === 1;
  }
}

type StoredFields = [string, number, string, string | null, string | null, string | null, number, number];

/** The stored metadata's columns but its device, in one order: the prepared writes' arguments. */
function fieldsOf(row: Omit<DirectorTargetsTable, 'device_id'>): StoredFields {
  return [row.organization_id, row.version, row.metadata, row.target_name, row.rollout_id, row.hardware_id, row.signed_at, row.expires_at];
}

function columnsOf(fields: StoredFields): Omit<DirectorTargetsTable, 'device_id'> {
  const [organization_id, version, metadata, target_name, rollout_id, hardware_id, signed_at, expires_at] = fields;
  return { organization_id, version, metadata, target_name, rollout_id, hardware_id, signed_at, expires_at };
}
