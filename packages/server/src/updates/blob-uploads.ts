/**
 * Firmware image uploads per organization, over the shared content-addressed blob store: each
 * organization's holdings are rows of `firmware_blobs`, counted against `updates.blobQuotaBytes`.
 * An upload reserves its bytes (the declared length, or the room left) under the organization's
 * lock before a byte is read, so concurrent uploads on any node cannot overshoot the quota; the
 * stream is cut the moment it passes the reservation. The hourly sweep deletes holdings no release
 * of that organization names once they are older than `updates.orphanBlobGraceHours`, then every
 * stored file that no holding and no release names any more, and temporary files of dead uploads.
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Readable } from 'node:stream';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { HOUR } from '../clock.js';
import type { Database } from '../storage/schema.js';
import { newId } from '../tokens.js';
import { assertBlobHash, type BlobStore, type PutResult } from './blobs.js';
import { UpdateError } from './errors.js';

export interface BlobUploadOptions {
  /** updates.maxImageBytes */
  maxImageBytes: number;
  /** updates.blobQuotaBytes */
  quotaBytes: number;
  /** updates.orphanBlobGraceHours */
  graceHours: number;
}

export interface SweepReport {
  /** Holdings of images no release of their organization names, past the grace period. */
  orphans: number;
  /** Stored images deleted because nothing names them any more. */
  files: number;
  /** Temporary files of uploads that died with their process. */
  temporary: number;
}

/** The upload would take the organization past its storage quota. */
export class BlobQuotaExceededError extends UpdateError {
  constructor(quotaBytes: number, usedBytes: number) {
    super(
      'update.blob_quota_exceeded',
      `This organization may hold at most ${quotaBytes} bytes of images (updates.blobQuotaBytes) and holds ${usedBytes}: nothing was stored. Images no release names are deleted after the grace period`,
      413,
      { quotaBytes, usedBytes },
    );
  }
}

export class BlobUploads {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly blobs: BlobStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly options: BlobUploadOptions,
  ) {}

  /**
   * Streams an image into the store for the actor's organization. `declaredLength` (the request's
   * Content-Length) is checked against the quota before anything is read; without it the upload
   * may use the room left. Audited when the organization did not hold the image yet.
   */
  async upload(actor: Actor, sha256: string, source: Readable, declaredLength?: number): Promise<PutResult> {
    requirePermission(actor, 'firmware:release');
    assertBlobHash(sha256);
    const org = actor.organizationId;
    const reservation = await this.reserve(org, sha256, declaredLength);
    let stored: PutResult;
    try {
      stored = await this.blobs.put(source, { sha256 }, reservation.cap);
    } catch (error) {
      if (reservation.id) await this.db.deleteFrom('firmware_blobs').where('id', '=', reservation.id).execute();
      throw error;
    }
    await this.db.transaction().execute(async (trx) => {
      await lockOrganization(org, trx);
      if (reservation.id) await trx.deleteFrom('firmware_blobs').where('id', '=', reservation.id).execute();
      const held = await this.holding(org, sha256, trx);
      const now = this.clock.now();
      // Uploading an image again restarts its grace period.
      if (held) await trx.updateTable('firmware_blobs').set({ created_at: now }).where('id', '=', held.id).execute();
      else
        await trx
          .insertInto('firmware_blobs')
          .values({ id: newId(), organization_id: org, sha256, length: stored.length, stored: 1, created_at: now })
          .execute();
      if (!held) {
        await this.audit.record(
          {
            organizationId: org,
            actor: auditActor(actor),
            action: 'firmware.blob_uploaded',
            target: { type: 'blob', id: sha256 },
            sourceIp: actor.sourceIp,
            details: { length: stored.length },
          },
          trx,
        );
      }
    });
    return stored;
  }

  /** Bytes the organization holds and has reserved. */
  async usage(organizationId: string, db: Kysely<Database> = this.db): Promise<number> {
    const row = await db
      .selectFrom('firmware_blobs')
      .select((eb) => eb.fn.sum<number | string | null>('length').as('bytes'))
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    return Number(row?.bytes ?? 0);
  }

  /**
   * Deletes what nobody needs any more (see the module comment). Returns what it removed; run at
   * start and hourly.
   */
  async sweep(): Promise<SweepReport> {
    const now = this.clock.now();
    const before = now - this.options.graceHours * HOUR;
    const released = (eb: ExpressionBuilder<Database, 'firmware_blobs'>) =>
      eb.exists(
        eb
          .selectFrom('firmware_releases as r')
          .select('r.id')
          .whereRef('r.organization_id', '=', 'firmware_blobs.organization_id')
          .whereRef('r.sha256', '=', 'firmware_blobs.sha256'),
      );
    // Holdings past their grace that no release of theirs names; reservations of uploads that died.
    const orphans = await this.db
      .deleteFrom('firmware_blobs')
      .where('created_at', '<', before)
      .where((eb) => eb.or([eb('stored', '=', 0), eb.not(released(eb))]))
      .executeTakeFirst();
    let files = 0;
    for await (const blob of this.blobs.list()) {
      // A file written within the grace period may belong to an upload that is just finishing.
      if (now - blob.modifiedAt <= this.options.graceHours * HOUR) continue;
      const holder = await this.db.selectFrom('firmware_blobs').select('id').where('sha256', '=', blob.sha256).executeTakeFirst();
      const release = holder
        ? undefined
        : await this.db.selectFrom('firmware_releases').select('id').where('sha256', '=', blob.sha256).executeTakeFirst();
      if (!holder && !release && (await this.blobs.remove(blob.sha256))) files++;
    }
    return { orphans: Number(orphans.numDeletedRows), files, temporary: await this.blobs.sweep() };
  }

  /**
   * Reserves the bytes of an upload, refusing it when they do not fit the quota. An image the
   * organization already holds needs no room (its bytes are checked, then kept once).
   */
  private async reserve(
    organizationId: string,
    sha256: string,
    declaredLength: number | undefined,
  ): Promise<{ id: string | null; cap?: { bytes: number; exceeded: () => UpdateError } }> {
    return this.db.transaction().execute(async (trx) => {
      await lockOrganization(organizationId, trx);
      if (await this.holding(organizationId, sha256, trx)) return { id: null };
      const used = await this.usage(organizationId, trx);
      const room = this.options.quotaBytes - used;
      const exceeded = () => new BlobQuotaExceededError(this.options.quotaBytes, used);
      const bytes = declaredLength ?? Math.min(room, this.options.maxImageBytes);
      if (bytes > room || room <= 0) throw exceeded();
      const id = newId();
      await trx
        .insertInto('firmware_blobs')
        .values({ id, organization_id: organizationId, sha256, length: bytes, stored: 0, created_at: this.clock.now() })
        .execute();
      return { id, cap: { bytes, exceeded } };
    });
  }

  private holding(organizationId: string, sha256: string, db: Kysely<Database>): Promise<{ id: string } | undefined> {
    return db
      .selectFrom('firmware_blobs')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('sha256', '=', sha256)
      .where('stored', '=', 1)
      .executeTakeFirst();
  }
}

/**
 * Holds the organization's row until the transaction ends, so two uploads (on any node) count the
 * quota one after the other: a no-op write takes the row lock on PostgreSQL, and SQLite runs one
 * write transaction at a time.
 */
async function lockOrganization(organizationId: string, trx: Kysely<Database>): Promise<void> {
  await trx
    .updateTable('organizations')
    .set((eb) => ({ slug: eb.ref('slug') }))
    .where('id', '=', organizationId)
    .execute();
}
