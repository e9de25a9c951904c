/**
 * The leases on deployment-wide background jobs (`job_leases`): a node takes a job's lease when
 * it is free, lapsed or already its own, in one statement, so two nodes asking at once never
 * both get it.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';

export class JobLeaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Takes or renews `job` for `holder` until `until`; false while another holder's lease runs. */
  async acquire(job: string, holder: string, now: number, until: number): Promise<boolean> {
    const row = await this.db
      .insertInto('job_leases')
      .values({ job, holder, expires_at: until })
      .onConflict((oc) =>
        oc
          .column('job')
          .doUpdateSet({ holder, expires_at: until })
          .where((eb) => eb.or([eb('job_leases.holder', '=', holder), eb('job_leases.expires_at', '<=', now)])),
      )
      .returning('holder')
      .executeTakeFirst();
    return row?.holder === holder;
  }

  /** Extends every lease `holder` still holds until `until` (its heartbeat). */
  async renew(holder: string, until: number): Promise<void> {
    await this.db.updateTable('job_leases').set({ expires_at: until }).where('holder', '=', holder).execute();
  }

  /** Gives up `holder`'s leases (a node shutting down), so another node takes the jobs at its next run. */
  async release(holder: string): Promise<void> {
    await this.db.deleteFrom('job_leases').where('holder', '=', holder).execute();
  }
}
