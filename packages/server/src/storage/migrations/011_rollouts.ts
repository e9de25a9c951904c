/**
 * The director and rollouts: rollouts with their phases and thresholds, the per-device snapshot
 * of each rollout (counted by state), each device's current director targets metadata, and each
 * device's latest signed version report.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rollouts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('release_id', 'text', (c) => c.notNull().references('firmware_releases.id'))
    .addColumn('product_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('selector', 'text', (c) => c.notNull())
    .addColumn('phases', 'text', (c) => c.notNull())
    .addColumn('success_threshold', 'double precision', (c) => c.notNull())
    .addColumn('failure_threshold', 'double precision', (c) => c.notNull())
    .addColumn('max_concurrent_downloads', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('current_phase', 'integer', (c) => c.notNull())
    .addColumn('phase_started_at', 'bigint', (c) => c.notNull())
    .addColumn('device_count', 'integer', (c) => c.notNull())
    .addColumn('skipped_count', 'integer', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('rollouts_org_created').on('rollouts').columns(['organization_id', 'created_at']).execute();
  await db.schema.createIndex('rollouts_status').on('rollouts').columns(['status']).execute();

  await db.schema
    .createTable('rollout_devices')
    .addColumn('rollout_id', 'text', (c) => c.notNull().references('rollouts.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('phase', 'integer', (c) => c.notNull())
    .addColumn('rank', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('offered_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('rollout_devices_pk', ['rollout_id', 'device_id'])
    .execute();
  // Counts per state, the offer queue in rank order, and a device's rollouts.
  await db.schema.createIndex('rollout_devices_state').on('rollout_devices').columns(['rollout_id', 'state']).execute();
  await db.schema.createIndex('rollout_devices_queue').on('rollout_devices').columns(['rollout_id', 'phase', 'rank']).execute();
  await db.schema.createIndex('rollout_devices_device').on('rollout_devices').columns(['device_id']).execute();

  await db.schema
    .createTable('director_targets')
    .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('target_name', 'text')
    .addColumn('rollout_id', 'text')
    .addColumn('hardware_id', 'text')
    .addColumn('signed_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('device_version_reports')
    .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull())
    .addColumn('report', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['device_version_reports', 'director_targets', 'rollout_devices', 'rollouts'])
    await db.schema.dropTable(table).execute();
}
