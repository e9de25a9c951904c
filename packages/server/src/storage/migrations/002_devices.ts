/**
 * The device registry: products (device models) and devices, with the indexes that keep listing
 * fast at a million devices. Every listing walks an index in serial order (keyset pagination on
 * (organization_id, serial), never OFFSET); each filter has an index that leads with the
 * organization and the filtered column and ends with the serial, so a filtered page is one index
 * range. Tags live in `device_tags` (one row per tag, carrying the serial) for the same reason.
 * Serials compare byte-wise on both engines (SQLite's BINARY; `COLLATE "C"` on PostgreSQL) so a
 * serial prefix is one index range whatever the database's locale.
 */
import { PostgresAdapter, sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const bytewise = (c: ColumnDefinitionBuilder) => (postgres ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull());

  await db.schema
    .createTable('products')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('hardware_revision', 'text')
    .addColumn('firmware_line', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('products_org_name', ['organization_id', 'name'])
    .execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('serial', 'text', bytewise)
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('firmware_version', 'text')
    .addColumn('last_seen_at', 'bigint')
    .addColumn('attributes', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('group_name', 'text')
    .addColumn('owner_user_id', 'text', (c) => c.references('users.id'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('devices_org_serial', ['organization_id', 'serial'])
    .execute();
  for (const column of ['status', 'product_id', 'group_name', 'firmware_version']) {
    await db.schema.createIndex(`devices_org_${column}`).on('devices').columns(['organization_id', column, 'serial']).execute();
  }

  await db.schema
    .createTable('device_tags')
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('tag', 'text', (c) => c.notNull())
    .addColumn('serial', 'text', bytewise)
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('device_tags_pk', ['organization_id', 'tag', 'serial'])
    .execute();
  await db.schema.createIndex('device_tags_device').on('device_tags').column('device_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['device_tags', 'devices', 'products']) await db.schema.dropTable(table).execute();
}
