/**
 * The advisories' tables: the OSV records each organization imported and the daily exposure the
 * charts read. The only file of assessment/advisories, with fleet-store.ts, that runs queries.
 */
import type { Kysely } from 'kysely';
import type { AssessmentAdvisoriesTable, AssessmentAdvisoryExposureTable, Database } from '../../storage/schema.js';

export type AdvisoryRow = AssessmentAdvisoriesTable;
export type ExposureRow = AssessmentAdvisoryExposureTable;

export class AdvisoryStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts or replaces each record; answers which were new, changed (another `modified`) or the same. */
  async put(rows: AdvisoryRow[]): Promise<{ added: string[]; updated: string[]; unchanged: string[] }> {
    const result = { added: [] as string[], updated: [] as string[], unchanged: [] as string[] };
    await this.db.transaction().execute(async (trx) => {
      for (const row of rows) {
        const existing = await trx
          .selectFrom('assessment_advisories')
          .select(['modified', 'record'])
          .where('organization_id', '=', row.organization_id)
          .where('id', '=', row.id)
          .executeTakeFirst();
        if (existing && existing.modified === row.modified && existing.record === row.record) {
          result.unchanged.push(row.id);
          continue;
        }
        const { organization_id: _org, id: _id, ...changes } = row;
        await trx
          .insertInto('assessment_advisories')
          .values(row)
          .onConflict((oc) => oc.columns(['organization_id', 'id']).doUpdateSet(changes))
          .execute();
        (existing ? result.updated : result.added).push(row.id);
      }
    });
    return result;
  }

  async all(organizationId: string): Promise<AdvisoryRow[]> {
    return this.db.selectFrom('assessment_advisories').selectAll().where('organization_id', '=', organizationId).orderBy('id').execute();
  }

  async get(organizationId: string, id: string): Promise<AdvisoryRow | undefined> {
    return this.db
      .selectFrom('assessment_advisories')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** Records the day's exposure of each advisory (a later run the same day replaces it). */
  async recordExposure(rows: ExposureRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const row of rows)
        await trx
          .insertInto('assessment_advisory_exposure')
          .values(row)
          .onConflict((oc) =>
            oc
              .columns(['organization_id', 'advisory_id', 'day'])
              .doUpdateSet({ devices: row.devices, releases: row.releases, recorded_at: row.recorded_at }),
          )
          .execute();
    });
  }

  /** The daily exposure from `fromDay` on, of one advisory or all, by day then advisory. */
  async exposure(organizationId: string, fromDay: string, advisoryId?: string): Promise<ExposureRow[]> {
    return this.db
      .selectFrom('assessment_advisory_exposure')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('day', '>=', fromDay)
      .$if(advisoryId !== undefined, (q) => q.where('advisory_id', '=', advisoryId!))
      .orderBy('day')
      .orderBy('advisory_id')
      .execute();
  }
}
