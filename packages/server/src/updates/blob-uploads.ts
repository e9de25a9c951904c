/**
 * Firmware image uploads per organization, over the shared content-addressed blob store: each
 * organization's holdings are rows of `firmware_blobs`, counted against `updates.blobQuotaBytes`.
 * An upload reserves its bytes (the declared length, or the room left) under the organization's
 * lock before a byte is read, so concurrent uploads on any node cannot overshoot the quota; the
 * stream is cut the moment it passes the reservation. The hourly sweep deletes holdings no release
 * of that organization names once they are older than `updates.orphanBlobGraceHours`, then every
 * stored file that no holding and no release names any more, and temporary files of dead uploads.
 */
import type { Readable } from 'node:stream';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { HOUR } from '../clock.js';
import { newId } from '../tokens.js';
import { BlobHoldingStore } from './blob-holding-store.js';
import { assertBlobHash, type BlobStore, type PutResult } from './blobs.js';
import { UpdateError } from './errors.js';
import type { Executor } from '../storage/executor.js';

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
  private readonly store: BlobHoldingStore;

  constructor(
    private readonly db: Executor,
    private readonly blobs: BlobStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly options: BlobUploadOptions,
    /**
     * Holds the organization's row until the transaction ends (the accounts domain's lock), so two
     * uploads (on any node) count the quota one after the other.
     */
    private readonly lockOrganization: (organizationId: string, trx: Executor) => Promise<void>,
  ) {
    this.store = new BlobHoldingStore(db);
  }

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
      if (reservation.id) await this.store.remove(reservation.id);
      throw error;
    }
    await this.db.transaction().execute(async (trx) => {
      await this.lockOrganization(org, trx);
      if (reservation.id) await this.store.remove(reservation.id, trx);
      const held = await this.store.holding(org, sha256, trx);
      const now = this.clock.now();
      // Uploading an image again restarts its grace period.
      if (held) await this.store.touch(held.id, now, trx);
      else await this.store.insert({ id: newId(), organization_id: org, sha256, length: stored.length, stored: 1, created_at: now }, trx);
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
  usage(organizationId: string, db: Executor = this.db): Promise<number> {
    return this.store.usage(organizationId, db);
  }

  /**
   * Deletes what nobody needs any more (see the module comment). Returns what it removed; run at
   * start and hourly.
   */
  async sweep(): Promise<SweepReport> {
    const now = this.clock.now();
    const before = now - this.options.graceHours * HOUR;
    // Holdings past their grace that no release of theirs names; reservations of uploads that died.
    const orphans = await this.store.deleteOrphans(before);
    let files = 0;
    for await (const blob of this.blobs.list()) {
      // A file written within the grace period may belong to an upload that is just finishing.
      if (now - blob.modifiedAt <= this.options.graceHours * HOUR) continue;
      if (!(await this.store.named(blob.sha256)) && (await this.blobs.remove(blob.sha256))) files++;
    }
    return { orphans, files, temporary: await this.blobs.sweep() };
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
      await this.lockOrganization(organizationId, trx);
      if (await this.store.holding(organizationId, sha256, trx)) return { id: null };
      const used = await this.usage(organizationId, trx);
      const room = this.options.quotaBytes - used;
      const exceeded = () => new BlobQuotaExceededError(this.options.quotaBytes, used);
      const bytes = declaredLength ?? Math.min(room, this.options.maxImageBytes);
      if (bytes > room || room <= 0) throw exceeded();
      const id = newId();
      await this.store.insert({ id, organization_id: organizationId, sha256, length: bytes, stored: 0, created_at: this.clock.now() }, trx);
      return { id, cap: { bytes, exceeded } };
    });
  }
}
