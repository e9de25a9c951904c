/**
 * The vulnerability disclosure tables (024): the reports received, and the one public read of
 * products (name and end of support) that ETSI EN 303 645 5.3-13 asks a brand to publish.
 */
import type { Kysely } from 'kysely';
import type { Database, DisclosureReportsTable } from '../storage/schema.js';

export type DisclosureRow = DisclosureReportsTable;

/** Reports a list answers at most. */
const LIST_LIMIT = 200;

export class DisclosureStore {
  constructor(private readonly db: Kysely<Database>) {}

  async organizationBySlug(slug: string): Promise<{ id: string } | undefined> {
    return this.db.selectFrom('organizations').select('id').where('slug', '=', slug).executeTakeFirst();
  }

  async countReceived(organizationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('disclosure_reports')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', organizationId)
      .where('state', '=', 'received')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insert(row: DisclosureRow): Promise<void> {
    await this.db.insertInto('disclosure_reports').values(row).execute();
  }

  async find(organizationId: string, id: string): Promise<DisclosureRow | undefined> {
    return this.db
      .selectFrom('disclosure_reports')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** Newest first; `before` is the previous page's last received_at. */
  async list(organizationId: string, state: string | undefined, limit: number, before?: number): Promise<DisclosureRow[]> {
    let query = this.db
      .selectFrom('disclosure_reports')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('received_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(limit, LIST_LIMIT));
    if (state) query = query.where('state', '=', state);
    if (before !== undefined) query = query.where('received_at', '<', before);
    return query.execute();
  }

  /** Moves a report from `from` to its new state; false when it was no longer in `from` (a concurrent change). */
  async transition(organizationId: string, id: string, from: string, changes: Partial<DisclosureRow>): Promise<boolean> {
    const result = await this.db
      .updateTable('disclosure_reports')
      .set(changes)
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .where('state', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The organization's products with the end of their support period (null: none declared), by name. */
  async supportPeriods(organizationId: string): Promise<{ name: string; support_until: number | null }[]> {
    return this.db
      .selectFrom('products')
      .select(['name', 'support_until'])
      .where('organization_id', '=', organizationId)
      .orderBy('name')
      .limit(1000)
      .execute();
  }
}
