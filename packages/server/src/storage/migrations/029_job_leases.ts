/**
 * Leases on deployment-wide background jobs (`job_leases`, runner/jobs.ts): the node holding a
 * job's lease runs it and renews the lease at each run; the others skip it until the lease
 * lapses (its holder stopped or died), so a job such as a scheduled backup or the audit checks
 * runs once per deployment, not once per node.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('job_leases')
    .addColumn('job', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_leases').execute();
}
