/**
 * The TUF image repository of each organization: every version of every role's signed metadata
 * (root, targets, the product lines' delegated targets, snapshot, timestamp) and the director root,
 * kept as the exact JSON served to devices. Rows are never updated: a new version is a new row.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tuf_metadata')
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('json', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('tuf_metadata_pk', ['organization_id', 'role', 'version'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('tuf_metadata').execute();
}
