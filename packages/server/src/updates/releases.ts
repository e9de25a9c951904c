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

export interface Release {
  id: string;
  organizationId: string;
  productId: string;
  version: string;
  securityVersion: number;
  hardwareIds: string[];
  /** The image repository target: `<productId>/firmware-<version>.bin`. */
  targetName: string;
  sha256: string;
  length: number;
  notes: string;
  createdAt: number;
}

export class ReleaseService {
  constructor(
    readonly db: Kysely<Database>,
    readonly blobs: BlobStore,
    readonly repository: TufRepository,
    readonly devices: DevicesService,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {}

  /** A release of the organization; NotFoundError otherwise. */
  async get(_organizationId: string, _releaseId: string): Promise<Release> {
    throw new Error('not implemented');
  }
}
