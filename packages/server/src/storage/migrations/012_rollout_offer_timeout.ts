/**
 * Rollout hardening: each rollout's offer timeout (an offered device that stays silent gives its
 * download slot back), and the table that makes "a device is in at most one unfinished rollout" a
 * constraint rather than a check (two concurrent creates cannot both enroll a device).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('rollouts')
    .addColumn('offer_timeout_seconds', 'integer', (c) => c.notNull().defaultTo(3600))
    .execute();

  await db.schema
    .createTable('rollout_active_devices')
    .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id'))
    .addColumn('rollout_id', 'text', (c) => c.notNull().references('rollouts.id'))
    .execute();
  await db.schema.createIndex('rollout_active_devices_rollout').on('rollout_active_devices').columns(['rollout_id']).execute();
  // Devices of rollouts unfinished now; should an earlier race have enrolled one twice, the older rollout keeps it.
  await sql`
    insert into rollout_active_devices (device_id, rollout_id)
    select rd.device_id, min(rd.rollout_id)
    from rollout_devices rd
    join rollouts r on r.id = rd.rollout_id
    where r.status in ('running', 'paused', 'halted')
      and r.created_at = (
        select min(r2.created_at) from rollout_devices rd2 join rollouts r2 on r2.id = rd2.rollout_id
        where rd2.device_id = rd.device_id and r2.status in ('running', 'paused', 'halted')
      )
    group by rd.device_id
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('rollout_active_devices').execute();
  await db.schema.alterTable('rollouts').dropColumn('offer_timeout_seconds').execute();
}
