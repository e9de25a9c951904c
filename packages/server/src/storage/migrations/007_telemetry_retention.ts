/**
 * Telemetry queries and retention. Products get `telemetry_retention_days` (null: the deployment's
 * default, `telemetry.retentionDays`). Telemetry rows get `seq`, a unique, ever-increasing number
 * that breaks ties between readings of the same device at the same millisecond, so a page
 * boundary (ts, seq) is exact and keyset pagination neither skips nor repeats a row.
 *
 * PostgreSQL: an identity column (existing rows numbered as the column is added) and the
 * (device_id, ts) index replaced by (device_id, ts, seq), the order every query walks.
 * SQLite: `seq` is the rowid itself (INTEGER PRIMARY KEY). A column cannot become the rowid in
 * place, so the table is rebuilt in one transaction keeping every row's rowid; SQLite indexes
 * end with the rowid, so (device_id, ts) already orders by (device_id, ts, seq).
 *
 * Retention deletes a device's rows older than a cutoff through the same index; it needs no other.
 */
import { PostgresAdapter, sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('products').addColumn('telemetry_retention_days', 'integer').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await db.schema
      .alterTable('telemetry')
      .addColumn('seq', 'bigint', (c) => c.generatedByDefaultAsIdentity().notNull())
      .execute();
    await db.schema.dropIndex('telemetry_device_ts').execute();
    await db.schema.createIndex('telemetry_device_ts').on('telemetry').columns(['device_id', 'ts', 'seq']).execute();
    return;
  }
  // Kysely runs SQLite migrations outside a transaction; the rebuild must be all or nothing.
  await db.transaction().execute(async (trx) => {
    await trx.schema
      .createTable('telemetry_rebuilt')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await sql`insert into telemetry_rebuilt (seq, organization_id, device_id, ts, received_at, data)
      select rowid, organization_id, device_id, ts, received_at, data from telemetry order by rowid`.execute(trx);
    await trx.schema.dropTable('telemetry').execute();
    await trx.schema.alterTable('telemetry_rebuilt').renameTo('telemetry').execute();
    await trx.schema.createIndex('telemetry_device_ts').on('telemetry').columns(['device_id', 'ts']).execute();
    await trx.schema.createIndex('telemetry_received').on('telemetry').column('received_at').execute();
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await db.schema.dropIndex('telemetry_device_ts').execute();
    await db.schema.createIndex('telemetry_device_ts').on('telemetry').columns(['device_id', 'ts']).execute();
    await db.schema.alterTable('telemetry').dropColumn('seq').execute();
  }
  // On SQLite `seq` is the rowid every table has: there is nothing to take back but the product column.
  await db.schema.alterTable('products').dropColumn('telemetry_retention_days').execute();
}
