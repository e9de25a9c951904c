/**
 * Just-in-time provisioning (issue 18, the device half): the manufacturer CAs a product trusts to
 * vouch for devices never registered beforehand, the certificates through which devices were
 * registered (so the same certificate always maps to the same device), and the allow-lists an
 * organization puts on registrations per product or enrollment group: serial patterns, source
 * address ranges, a daily quota (counted per UTC day) and imported serial lists.
 */
import { PostgresAdapter, sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const bytewise = (c: ColumnDefinitionBuilder) => (postgres ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull());

  await db.schema
    .createTable('manufacturer_cas')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('subject_sha256', 'text', (c) => c.notNull())
    .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
    .addColumn('pem', 'text', (c) => c.notNull())
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('device_id_from', 'text', (c) => c.notNull())
    .addColumn('device_id_prefix', 'text', (c) => c.notNull())
    .addColumn('activation', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('manufacturer_cas_subject').on('manufacturer_cas').column('subject_sha256').execute();
  await db.schema.createIndex('manufacturer_cas_org').on('manufacturer_cas').columns(['organization_id', 'created_at']).execute();

  await db.schema
    .createTable('manufacturer_registrations')
    .addColumn('fingerprint_sha256', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('manufacturer_ca_id', 'text', (c) => c.notNull().references('manufacturer_cas.id'))
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('manufacturer_registrations_ca').on('manufacturer_registrations').column('manufacturer_ca_id').execute();
  await db.schema.createIndex('manufacturer_registrations_device').on('manufacturer_registrations').column('device_id').execute();

  await db.schema
    .createTable('enrollment_policies')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('serial_patterns', 'text', (c) => c.notNull())
    .addColumn('source_cidrs', 'text', (c) => c.notNull())
    .addColumn('daily_quota', 'integer')
    .addColumn('serial_list', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_policies_pk', ['scope', 'scope_id'])
    .execute();

  await db.schema
    .createTable('enrollment_allowed_serials')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('serial', 'text', bytewise)
    .addPrimaryKeyConstraint('enrollment_allowed_serials_pk', ['scope', 'scope_id', 'serial'])
    .execute();

  await db.schema
    .createTable('enrollment_daily_counts')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('registrations', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_daily_counts_pk', ['scope', 'scope_id', 'day'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'enrollment_daily_counts',
    'enrollment_allowed_serials',
    'enrollment_policies',
    'manufacturer_registrations',
    'manufacturer_cas',
  ])
    await db.schema.dropTable(table).execute();
}
