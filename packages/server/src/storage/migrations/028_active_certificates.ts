/**
 * The active certificates of an organization in serial order (`issued_certificates_active`): the
 * audit checks page through them by serial (assessment/evidence-store.ts). Without it each page
 * found every active certificate through (status, not_after) and sorted them again, so a scan of
 * an organization's certificates grew with the square of their count.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('issued_certificates_active')
    .on('issued_certificates')
    .columns(['organization_id', 'status', 'serial'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('issued_certificates_active').execute();
}
