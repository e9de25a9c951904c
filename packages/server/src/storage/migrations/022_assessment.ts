/**
 * Security assessment (issue 15, docs/assessment.md): the findings the audit checks raise
 * (`assessment_findings`, one per organization, check and subject key, with its state), the
 * resources each names (`assessment_finding_resources`, bounded per finding), every check run
 * (`assessment_runs`) and each organization's notification settings (`assessment_settings`:
 * the webhook address and its HMAC secret, sealed under the master key). Products gain the end of
 * their declared support period (`products.support_until`, ETSI EN 303 645 provision 5.3-13).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('products').addColumn('support_until', 'bigint').execute();
  await db.schema
    .createTable('assessment_findings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('check_id', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('resource_count', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('resolved_at', 'bigint')
    .addColumn('suppressed_reason', 'text')
    .addColumn('suppressed_by', 'text')
    .addColumn('suppressed_at', 'bigint')
    .addColumn('suppressed_until', 'bigint')
    .execute();
  await db.schema
    .createIndex('assessment_findings_key')
    .on('assessment_findings')
    .columns(['organization_id', 'check_id', 'subject'])
    .unique()
    .execute();
  await db.schema.createIndex('assessment_findings_state').on('assessment_findings').columns(['organization_id', 'state', 'id']).execute();

  await db.schema
    .createTable('assessment_finding_resources')
    .addColumn('finding_id', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text', (c) => c.notNull())
    .addColumn('resource_id', 'text', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('assessment_finding_resources_pk', ['finding_id', 'resource_type', 'resource_id'])
    .execute();

  await db.schema
    .createTable('assessment_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('checks', 'text', (c) => c.notNull())
    .addColumn('opened', 'integer', (c) => c.notNull())
    .addColumn('resolved', 'integer', (c) => c.notNull())
    .addColumn('open_total', 'integer', (c) => c.notNull())
    .addColumn('failures', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('assessment_runs_org').on('assessment_runs').columns(['organization_id', 'started_at']).execute();

  await db.schema
    .createTable('assessment_settings')
    .addColumn('organization_id', 'text', (c) => c.primaryKey())
    .addColumn('webhook_url', 'text')
    .addColumn('webhook_secret', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('assessment_settings').execute();
  await db.schema.dropTable('assessment_runs').execute();
  await db.schema.dropTable('assessment_finding_resources').execute();
  await db.schema.dropTable('assessment_findings').execute();
  await db.schema.alterTable('products').dropColumn('support_until').execute();
}
