/**
 * The assessment domain's tables: findings and the resources they name, check runs, and each
 * organization's notification settings. The only file of the domain, with evidence-store.ts,
 * that runs queries.
 */
import type { Kysely, Transaction } from 'kysely';
import type {
  AssessmentFindingResourcesTable,
  AssessmentFindingsTable,
  AssessmentRunsTable,
  AssessmentSettingsTable,
  Database,
} from '../storage/schema.js';
import type { FindingFilter, FindingSource, ResourceRef } from './model.js';
import type { Executor } from '../storage/executor.js';

export type FindingRow = AssessmentFindingsTable;

export class AssessmentStore {
  constructor(readonly db: Kysely<Database>) {}

  transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  /** The findings of a source in an organization that are not resolved: what a run reconciles against. */
  async unresolved(organizationId: string, source: FindingSource, db: Executor = this.db): Promise<FindingRow[]> {
    return db
      .selectFrom('assessment_findings')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('source', '=', source)
      .where('state', '!=', 'resolved')
      .execute();
  }

  async byKey(organizationId: string, check: string, subject: string, db: Executor = this.db): Promise<FindingRow | undefined> {
    return db
      .selectFrom('assessment_findings')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('check_id', '=', check)
      .where('subject', '=', subject)
      .executeTakeFirst();
  }

  async insert(row: FindingRow, resources: ResourceRef[], db: Executor = this.db): Promise<void> {
    await db.insertInto('assessment_findings').values(row).execute();
    await this.replaceResources(row.id, resources, db);
  }

  async update(id: string, changes: Partial<FindingRow>, db: Executor = this.db): Promise<void> {
    await db.updateTable('assessment_findings').set(changes).where('id', '=', id).execute();
  }

  async replaceResources(findingId: string, resources: ResourceRef[], db: Executor = this.db): Promise<void> {
    await db.deleteFrom('assessment_finding_resources').where('finding_id', '=', findingId).execute();
    if (resources.length === 0) return;
    const rows: AssessmentFindingResourcesTable[] = resources.map((r, position) => ({
      finding_id: findingId,
      resource_type: r.type,
      resource_id: r.id,
      position,
    }));
    await db.insertInto('assessment_finding_resources').values(rows).execute();
  }

  /** Suppressions whose expiry has passed become open again (the next run resolves them if the condition is gone). */
  async expireSuppressions(organizationId: string, now: number, db: Executor = this.db): Promise<string[]> {
    const expired = await db
      .selectFrom('assessment_findings')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('state', '=', 'suppressed')
      .where('suppressed_until', '<=', now)
      .execute();
    if (expired.length === 0) return [];
    const ids = expired.map((r) => r.id);
    await db
      .updateTable('assessment_findings')
      .set({ state: 'open', suppressed_reason: null, suppressed_by: null, suppressed_at: null, suppressed_until: null })
      .where('id', 'in', ids)
      .execute();
    return ids;
  }

  async find(organizationId: string, id: string, db: Executor = this.db): Promise<FindingRow | undefined> {
    return db
      .selectFrom('assessment_findings')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** In ID order (IDs are random: a stable order for the cursor); `cursor` is the last ID of the previous page. */
  async list(organizationId: string, filter: FindingFilter, limit: number): Promise<FindingRow[]> {
    let query = this.db
      .selectFrom('assessment_findings')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('id')
      .limit(limit);
    if (filter.state) query = query.where('state', '=', filter.state);
    if (filter.severity) query = query.where('severity', '=', filter.severity);
    if (filter.check) query = query.where('check_id', '=', filter.check);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    return query.execute();
  }

  async resourcesOf(findingIds: string[]): Promise<Map<string, ResourceRef[]>> {
    const byFinding = new Map<string, ResourceRef[]>();
    if (findingIds.length === 0) return byFinding;
    const rows = await this.db
      .selectFrom('assessment_finding_resources')
      .selectAll()
      .where('finding_id', 'in', findingIds)
      .orderBy('finding_id')
      .orderBy('position')
      .execute();
    for (const row of rows) {
      const list = byFinding.get(row.finding_id) ?? [];
      list.push({ type: row.resource_type, id: row.resource_id });
      byFinding.set(row.finding_id, list);
    }
    return byFinding;
  }

  async countOpen(organizationId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('assessment_findings')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', organizationId)
      .where('state', '=', 'open')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insertRun(row: AssessmentRunsTable, db: Executor = this.db): Promise<void> {
    await db.insertInto('assessment_runs').values(row).execute();
  }

  /** Newest first; `before` is the previous page's last started_at. */
  async runs(organizationId: string, limit: number, before?: number): Promise<AssessmentRunsTable[]> {
    let query = this.db
      .selectFrom('assessment_runs')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (before !== undefined) query = query.where('started_at', '<', before);
    return query.execute();
  }

  async settings(organizationId: string): Promise<AssessmentSettingsTable | undefined> {
    return this.db.selectFrom('assessment_settings').selectAll().where('organization_id', '=', organizationId).executeTakeFirst();
  }

  async putSettings(row: AssessmentSettingsTable): Promise<void> {
    await this.db
      .insertInto('assessment_settings')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('organization_id')
          .doUpdateSet({ webhook_url: row.webhook_url, webhook_secret: row.webhook_secret, updated_at: row.updated_at }),
      )
      .execute();
  }
}
