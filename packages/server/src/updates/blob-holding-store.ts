/**
 * Each organization's holdings of firmware images (firmware_blobs: stored images and the
 * reservations of uploads under way) through Kysely. Every method takes the executor so a
 * caller's transaction is used throughout.
 */
import type { ExpressionBuilder } from 'kysely';
import type { Database, FirmwareBlobsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export class BlobHoldingStore {
  constructor(readonly db: Executor) {}

  /** The organization's stored holding of the image, if any (a reservation is not one). */
  holding(organizationId: string, sha256: string, db: Executor = this.db): Promise<{ id: string } | undefined> {
    return db
      .selectFrom('firmware_blobs')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('sha256', '=', sha256)
      .where('stored', '=', 1)
      .executeTakeFirst();
  }

  async insert(row: FirmwareBlobsTable, db: Executor = this.db): Promise<void> {
    await db.insertInto('firmware_blobs').values(row).execute();
  }

  async remove(id: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('firmware_blobs').where('id', '=', id).execute();
  }

  /** Restarts a holding's grace period. */
  async touch(id: string, at: number, db: Executor = this.db): Promise<void> {
    await db.updateTable('firmware_blobs').set({ created_at: at }).where('id', '=', id).execute();
  }

  /** Bytes the organization holds and has reserved. */
  async usage(organizationId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('firmware_blobs')
      .select((eb) => eb.fn.sum<number | string | null>('length').as('bytes'))
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    return Number(row?.bytes ?? 0);
  }

  /** Deletes holdings older than `before` that no release of their organization names, and reservations that old; how many. */
  async deleteOrphans(before: number, db: Executor = this.db): Promise<number> {
    const released = (eb: ExpressionBuilder<Database, 'firmware_blobs'>) =>
      eb.exists(
        eb
          .selectFrom('firmware_releases as r')
          .select('r.id')
          .whereRef('r.organization_id', '=', 'firmware_blobs.organization_id')
          .whereRef('r.sha256', '=', 'firmware_blobs.sha256'),
      );
    const orphans = await db
      .deleteFrom('firmware_blobs')
      .where('created_at', '<', before)
      .where((eb) => eb.or([eb('stored', '=', 0), eb.not(released(eb))]))
      .executeTakeFirst();
    return Number(orphans.numDeletedRows);
  }

  /** Whether any organization holds the image, or else any release names it. */
  async named(sha256: string, db: Executor = this.db): Promise<boolean> {
    const holder = await db.selectFrom('firmware_blobs').select('id').where('sha256', '=', sha256).executeTakeFirst();
    const release = holder
      ? undefined
      : await db.selectFrom('firmware_releases').select('id').where('sha256', '=', sha256).executeTakeFirst();
    return holder !== undefined || release !== undefined;
  }
}
