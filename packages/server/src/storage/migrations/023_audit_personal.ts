/**
 * Personal data beside the audit chain (issue 14, consumer privacy): an entry's personal fields
 * (an email address, a name) live in `audit_personal`, keyed by the entry's sequence number and
 * the user they are about, outside the hash chain. Deleting that user's account erases them; the
 * chain, which names users only by their pseudonymous IDs, still verifies.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_personal')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('subject_user_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_personal_subject').on('audit_personal').column('subject_user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_personal').execute();
}
