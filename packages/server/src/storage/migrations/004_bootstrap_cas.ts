/**
 * Bootstrap (manufacturer) CAs an organization trusts to vouch for its devices at first enrollment:
 * a certificate printed at the factory, issued by one of these, lets a pending device enroll once
 * over EST without a token. Deleting a CA keeps its row (deleted_at) for the audit trail; lookups
 * go by the hash of the CA's subject, which a presented certificate names as its issuer.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('bootstrap_cas')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('subject_sha256', 'text', (c) => c.notNull())
    .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
    .addColumn('pem', 'text', (c) => c.notNull())
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint')
    .execute();
  await db.schema.createIndex('bootstrap_cas_subject').on('bootstrap_cas').columns(['subject_sha256', 'deleted_at']).execute();
  await db.schema.createIndex('bootstrap_cas_org').on('bootstrap_cas').columns(['organization_id', 'deleted_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('bootstrap_cas').execute();
}
