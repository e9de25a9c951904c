/**
 * Wires the updates domain: blob store, TUF image repository, releases, director and rollouts.
 */
import { join } from 'node:path';
import type { Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { DeviceMessenger } from '../devices/messaging.js';
import type { DevicesService } from '../devices/service.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import type { Config } from '../ops/config.js';
import { BlobUploads } from './blob-uploads.js';
import { BlobStore } from './blobs.js';
import { Director } from './director.js';
import { OnlineKeyRotation } from './online-keys.js';
import { ReleaseService } from './releases.js';
import { TufRepository } from './repository.js';

import { RolloutService } from './rollouts.js';
import type { Executor } from '../storage/executor.js';

export interface UpdatesDomain {
  blobs: BlobStore;
  uploads: BlobUploads;
  repository: TufRepository;
  onlineKeys: OnlineKeyRotation;
  releases: ReleaseService;
  director: Director;
  rollouts: RolloutService;
}

export interface UpdatesDependencies {
  config: Config;
  db: Executor;
  signingKeys: SigningKeys;
  audit: AuditService;
  clock: Clock;
  devices: DevicesService;
  link: DeviceMessenger;
  /** Throws unless the actor re-proved a factor recently (accounts). */
  requireStepUp: (actor: Actor) => void;
  /** Holds the organization's row until the transaction ends (accounts). */
  lockOrganization: (organizationId: string, trx: Executor) => Promise<void>;
}

export function openUpdates({
  config,
  db,
  signingKeys,
  audit,
  clock,
  devices,
  link,
  requireStepUp,
  lockOrganization,
}: UpdatesDependencies): UpdatesDomain {
  const settings = config.updates;
  const blobs = new BlobStore(join(config.dataDir, 'blobs'), { maxBytes: settings.maxImageBytes });
  const repository = new TufRepository(db, signingKeys, audit, clock, {
    timestampExpirySeconds: settings.timestampExpirySeconds,
    snapshotExpirySeconds: settings.snapshotExpirySeconds,
  });
  const uploads = new BlobUploads(
    db,
    blobs,
    audit,
    clock,
    {
      maxImageBytes: settings.maxImageBytes,
      quotaBytes: settings.blobQuotaBytes,
      graceHours: settings.orphanBlobGraceHours,
    },
    lockOrganization,
  );
  const releases = new ReleaseService(db, blobs, repository, devices, audit, clock);
  const director = new Director(db, signingKeys, repository, clock, { expirySeconds: settings.directorExpirySeconds });
  const rollouts = new RolloutService(db, director, releases, devices, link, audit, clock);
  const onlineKeys = new OnlineKeyRotation(signingKeys, repository, audit, clock, requireStepUp);
  return { blobs, uploads, repository, onlineKeys, releases, director, rollouts };
}
