/**
 * Vulnerability disclosure (issue 15, ETSI EN 303 645 provision 5.2-1, docs/assessment.md): the
 * reports received through the public intake, each with its state (received → triaged →
 * fixed / rejected), its deadlines (acknowledge, resolve) and the operators' last note. The
 * reporter's contact, personal data, is kept here for the reply and beside the audit chain.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('disclosure_reports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('product', 'text')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('contact', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('acknowledge_by', 'bigint', (c) => c.notNull())
    .addColumn('resolve_by', 'bigint', (c) => c.notNull())
    .addColumn('triaged_at', 'bigint')
    .addColumn('resolved_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('disclosure_reports_org').on('disclosure_reports').columns(['organization_id', 'received_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('disclosure_reports').execute();
}
