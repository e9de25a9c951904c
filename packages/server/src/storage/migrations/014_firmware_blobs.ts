/**
 * Which organization holds which image of the shared, content-addressed blob store, and how many
 * bytes: what a per-organization storage quota counts and what the orphan sweep collects. A row
 * with `stored` 0 reserves the bytes of an upload that is still running.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('firmware_blobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('length', 'bigint', (c) => c.notNull())
    .addColumn('stored', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('firmware_blobs_organization').on('firmware_blobs').columns(['organization_id', 'sha256']).execute();
  await db.schema.createIndex('firmware_blobs_sha256').on('firmware_blobs').columns(['sha256']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('firmware_blobs').execute();
}
