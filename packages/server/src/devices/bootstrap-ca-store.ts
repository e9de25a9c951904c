/**
 * The `bootstrap_cas` table: manufacturer CAs an organization trusts for first enrollment. Deleting
 * one keeps its row (`deleted_at`), so the audit trail and enrolled devices can still name it.
 */
import type { Kysely, Selectable } from 'kysely';
import type { BootstrapCasTable, Database } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type BootstrapCaRow = Selectable<BootstrapCasTable>;

export class BootstrapCaStore {
  constructor(readonly db: Kysely<Database>) {}

  /** The organization's CAs in use, oldest first. */
  live(organizationId: string, db: Executor = this.db): Promise<BootstrapCaRow[]> {
    return db
      .selectFrom('bootstrap_cas')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('deleted_at', 'is', null)
      .orderBy('created_at')
      .execute();
  }

  async insert(row: BootstrapCaRow, db: Executor): Promise<void> {
    await db.insertInto('bootstrap_cas').values(row).execute();
  }

  /** Marks the CA deleted; false when the organization has no such CA in use. */
  async markDeleted(organizationId: string, id: string, at: number, db: Executor): Promise<boolean> {
    const result = await db
      .updateTable('bootstrap_cas')
      .set({ deleted_at: at })
      .where('id', '=', id)
      .where('organization_id', '=', organizationId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The CAs in use, in any organization, whose subject hashes to `subjectSha256` (a certificate's issuer). */
  bySubject(subjectSha256: string): Promise<BootstrapCaRow[]> {
    return this.db
      .selectFrom('bootstrap_cas')
      .selectAll()
      .where('subject_sha256', '=', subjectSha256)
      .where('deleted_at', 'is', null)
      .execute();
  }
}
