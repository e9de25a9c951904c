/**
 * Device connectivity: telemetry (append-only, read by device and time range), device presence
 * (one row per device, written by the broker node holding the session), and the indexes the
 * broker's credential watcher polls to drop sessions of devices that were disabled, quarantined
 * or whose certificate was revoked, on whichever node the change was made.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('telemetry')
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('ts', 'bigint', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('telemetry_device_ts').on('telemetry').columns(['device_id', 'ts']).execute();
  await db.schema.createIndex('telemetry_received').on('telemetry').column('received_at').execute();

  await db.schema
    .createTable('device_presence')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('connected_since', 'bigint')
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('remote_address', 'text')
    .addColumn('protocol', 'text')
    .addColumn('changed_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema.createIndex('devices_updated').on('devices').column('updated_at').execute();
  await db.schema.createIndex('issued_certificates_revoked_at').on('issued_certificates').column('revoked_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('issued_certificates_revoked_at').execute();
  await db.schema.dropIndex('devices_updated').execute();
  await db.schema.dropTable('device_presence').execute();
  await db.schema.dropTable('telemetry').execute();
}
