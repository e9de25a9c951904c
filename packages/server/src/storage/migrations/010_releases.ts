/**
 * Firmware releases: one row per (product, version), naming the image (content-addressed in the
 * blob store) and the TUF target the product line's release keys signed for it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('firmware_releases')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('security_version', 'integer', (c) => c.notNull())
    .addColumn('hardware_ids', 'text', (c) => c.notNull())
    .addColumn('target_name', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('length', 'bigint', (c) => c.notNull())
    .addColumn('notes', 'text', (c) => c.notNull())
    .addColumn('sbom', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('firmware_releases_product_version', ['organization_id', 'product_id', 'version'])
    .execute();
  await db.schema.createIndex('firmware_releases_sha256').on('firmware_releases').columns(['organization_id', 'sha256']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('firmware_releases').execute();
}
