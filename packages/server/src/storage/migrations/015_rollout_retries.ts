/**
 * Rollout control: a retry policy (offers per device, backoff), a pause threshold beside the halt,
 * a schedule window; per device, the offers it had and when it may be offered again.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('rollouts')
    .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('rollouts')
    .addColumn('retry_backoff_seconds', 'integer', (c) => c.notNull().defaultTo(300))
    .execute();
  await db.schema.alterTable('rollouts').addColumn('pause_threshold', 'double precision').execute();
  // The phase an operator resumed in after the pause threshold paused it: the pause does not fire again in that phase.
  await db.schema.alterTable('rollouts').addColumn('pause_cleared_phase', 'integer').execute();
  await db.schema.alterTable('rollouts').addColumn('schedule_window', 'text').execute(); // JSON ScheduleWindow
  await db.schema
    .alterTable('rollout_devices')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('rollout_devices').addColumn('retry_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of ['attempts', 'retry_at']) await db.schema.alterTable('rollout_devices').dropColumn(column).execute();
  for (const column of ['max_attempts', 'retry_backoff_seconds', 'pause_threshold', 'pause_cleared_phase', 'schedule_window'])
    await db.schema.alterTable('rollouts').dropColumn(column).execute();
}
