/**
 * Firmware releases: image, versions, hardware compatibility, SBOM, accepted only with targets
 * metadata the product line's release keys signed. Owner: releases helper (skeleton).
 */
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import type { Database } from '../storage/schema.js';
import type { BlobStore } from './blobs.js';
import type { TufRepository } from './repository.js';

export class ReleaseService {
  constructor(
    readonly db: Kysely<Database>,
    readonly blobs: BlobStore,
    readonly repository: TufRepository,
    readonly devices: DevicesService,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {}
}
