/**
 * Symmetric-key devices: each device's AES-256 keys (sealed under the master key, one row per
 * version) and enrollment groups whose key derives device keys (HMAC-SHA256 of the registration
 * ID, as Azure DPS does). A key row's id is `<device id>:<version>`, so master-key rotation can
 * name its sealing context from the id alone. The unique (device_id, version) index is the one
 * range the broker's authenticate reads on every connect.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrollment_groups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('sealed_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('disabled_at', 'bigint')
    .addUniqueConstraint('enrollment_groups_org_name', ['organization_id', 'name'])
    .execute();

  await db.schema
    .createTable('device_symmetric_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('sealed_key', 'text', (c) => c.notNull())
    .addColumn('enrollment_group_id', 'text', (c) => c.references('enrollment_groups.id'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('valid_until', 'bigint')
    .addUniqueConstraint('device_symmetric_keys_device_version', ['device_id', 'version'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['device_symmetric_keys', 'enrollment_groups']) await db.schema.dropTable(table).execute();
}
