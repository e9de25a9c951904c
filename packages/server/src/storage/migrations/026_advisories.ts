/**
 * Vulnerability advisories (issue 15, docs/assessment.md): the OSV records each organization
 * imported, and the exposure over time (devices running a release an advisory affects, per day)
 * that the charts read. Beside them, the CA certificates operators recorded as revoked (an
 * intermediate the offline root revoked, a manufacturer's bootstrap CA), which two audit checks read.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('assessment_advisories')
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('modified', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('aliases', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('severity_source', 'text', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('assessment_advisories_pk', ['organization_id', 'id'])
    .execute();
  await db.schema
    .createTable('assessment_advisory_exposure')
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('advisory_id', 'text', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('devices', 'integer', (c) => c.notNull())
    .addColumn('releases', 'integer', (c) => c.notNull())
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('assessment_advisory_exposure_pk', ['organization_id', 'advisory_id', 'day'])
    .execute();
  await db.schema
    .createTable('ca_revocations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text')
    .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('pem', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('revoked_by', 'text')
    .addColumn('revoked_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ca_revocations_fingerprint').on('ca_revocations').column('fingerprint_sha256').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('ca_revocations').execute();
  await db.schema.dropTable('assessment_advisory_exposure').execute();
  await db.schema.dropTable('assessment_advisories').execute();
}
