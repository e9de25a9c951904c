/**
 * Release provenance and test gates: each product's release policy (attestation keys, builders,
 * source repositories, what is required), the provenance a published release showed, and the
 * releases a policy refused, with the reason.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('firmware_releases').addColumn('provenance', 'text').execute(); // JSON ReleaseProvenance
  await db.schema
    .createTable('release_policies')
    .addColumn('product_id', 'text', (c) => c.primaryKey().references('products.id'))
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('policy', 'text', (c) => c.notNull()) // JSON ReleasePolicy
    .addColumn('updated_by', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('release_refusals')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('product_id', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('release_refusals_product')
    .on('release_refusals')
    .columns(['organization_id', 'product_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('release_refusals').execute();
  await db.schema.dropTable('release_policies').execute();
  await db.schema.alterTable('firmware_releases').dropColumn('provenance').execute();
}
