/**
 * Consumer privacy (ETSI EN 303 645 provisions 6.1-1/2/3/5, docs/binding.md "Privacy"): what a
 * product senses and which telemetry it collects for which purpose (`product_privacy`, one JSON
 * declaration per product), and the owner's consent per purpose of each bound device
 * (`device_consents`), which decides which telemetry values are stored at all.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('product_privacy')
    .addColumn('product_id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('declaration', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('device_consents')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('granted', 'integer', (c) => c.notNull())
    .addColumn('decided_by', 'text', (c) => c.notNull())
    .addColumn('decided_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_consents_pk', ['device_id', 'purpose'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('device_consents').execute();
  await db.schema.dropTable('product_privacy').execute();
}
