/**
 * Certificates issued by the device issuing CA, with their revocation state (the CRL is built
 * from this table). device_id has no foreign key: the device registry is its own domain.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('issued_certificates')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('not_before', 'bigint', (c) => c.notNull())
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('fingerprint_sha256', 'text', (c) => c.notNull().unique())
    .addColumn('pem', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revocation_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('issued_certificates_device').on('issued_certificates').columns(['organization_id', 'device_id']).execute();
  await db.schema.createIndex('issued_certificates_revoked').on('issued_certificates').columns(['status', 'not_after']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('issued_certificates').execute();
}
