/**
 * Telemetry quotas (promise 9: one device cannot fill the database). Products get a daily
 * allowance per device in readings and payload bytes (null: the deployment's defaults,
 * `telemetry.dailyReadingsPerDevice` and `telemetry.dailyBytesPerDevice`); `telemetry_usage`
 * holds what each device was admitted per UTC day, so the allowance holds across restarts and
 * nodes. Days are counted since the epoch (UTC).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('products').addColumn('telemetry_daily_readings', 'bigint').execute();
  await db.schema.alterTable('products').addColumn('telemetry_daily_bytes', 'bigint').execute();
  await db.schema
    .createTable('telemetry_usage')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('readings', 'bigint', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('telemetry_usage_pk', ['device_id', 'day'])
    .execute();
  await db.schema.createIndex('telemetry_usage_day').on('telemetry_usage').column('day').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('telemetry_usage').execute();
  await db.schema.alterTable('products').dropColumn('telemetry_daily_bytes').execute();
  await db.schema.alterTable('products').dropColumn('telemetry_daily_readings').execute();
}
