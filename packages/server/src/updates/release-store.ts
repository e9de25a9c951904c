/**
 * The release tables through Kysely: firmware_releases (published releases), release_refusals
 * (releases a product's policy refused, with the reason) and release_policies (one per product).
 * Every method takes the executor so a caller's transaction is used throughout (SQLite has one connection).
 */
import type { Insertable, Selectable } from 'kysely';
import type { FirmwareReleasesTable, ReleasePoliciesTable, ReleaseRefusalsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type ReleaseRow = Selectable<FirmwareReleasesTable>;
export type RefusalRow = Selectable<ReleaseRefusalsTable>;

export class ReleaseStore {
  constructor(readonly db: Executor) {}

  /** The organization's releases: every read of firmware_releases starts here, so none leaves out the organization. */
  private releasesOf(organizationId: string, db: Executor) {
    return db.selectFrom('firmware_releases').where('organization_id', '=', organizationId);
  }

  /** The ID of the product's release of this version, if there is one. */
  async idOfVersion(organizationId: string, productId: string, version: string, db: Executor = this.db): Promise<string | undefined> {
    const row = await this.releasesOf(organizationId, db)
      .select('id')
      .where('product_id', '=', productId)
      .where('version', '=', version)
      .executeTakeFirst();
    return row?.id;
  }

  async insert(row: Insertable<FirmwareReleasesTable>, db: Executor = this.db): Promise<void> {
    await db.insertInto('firmware_releases').values(row).execute();
  }

  release(organizationId: string, releaseId: string, db: Executor = this.db): Promise<ReleaseRow | undefined> {
    return this.releasesOf(organizationId, db).selectAll().where('id', '=', releaseId).executeTakeFirst();
  }

  /** The organization's releases (of one product when given), newest first. */
  list(organizationId: string, productId: string | undefined, db: Executor = this.db): Promise<ReleaseRow[]> {
    let q = this.releasesOf(organizationId, db).selectAll();
    if (productId) q = q.where('product_id', '=', productId);
    return q.orderBy('created_at', 'desc').orderBy('id').execute();
  }

  /** Whether a release of the organization names this image under this target. */
  async names(organizationId: string, targetName: string, sha256: string, db: Executor = this.db): Promise<boolean> {
    const row = await this.releasesOf(organizationId, db)
      .select('id')
      .where('target_name', '=', targetName)
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The SBOM (JSON text) stored with the release, if the release exists. */
  async sbom(organizationId: string, releaseId: string, db: Executor = this.db): Promise<string | undefined> {
    const row = await this.releasesOf(organizationId, db).select('sbom').where('id', '=', releaseId).executeTakeFirst();
    return row?.sbom;
  }

  async insertRefusal(row: Insertable<ReleaseRefusalsTable>, db: Executor = this.db): Promise<void> {
    await db.insertInto('release_refusals').values(row).execute();
  }

  /** The organization's refusals (of one product when given), newest first, at most 500. */
  refusals(organizationId: string, productId: string | undefined, db: Executor = this.db): Promise<RefusalRow[]> {
    return db
      .selectFrom('release_refusals')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .$if(productId !== undefined, (q) => q.where('product_id', '=', productId!))
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(500)
      .execute();
  }

  refusal(organizationId: string, id: string, db: Executor = this.db): Promise<RefusalRow | undefined> {
    return db
      .selectFrom('release_refusals')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** The product's release policy (JSON text), if one is set. */
  async policy(organizationId: string, productId: string, db: Executor = this.db): Promise<string | undefined> {
    const row = await db
      .selectFrom('release_policies')
      .select('policy')
      .where('organization_id', '=', organizationId)
      .where('product_id', '=', productId)
      .executeTakeFirst();
    return row?.policy;
  }

  async setPolicy(row: ReleasePoliciesTable, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('release_policies')
      .values(row)
      .onConflict((oc) =>
        oc.column('product_id').doUpdateSet({ policy: row.policy, updated_by: row.updated_by, updated_at: row.updated_at }),
      )
      .execute();
  }
}
