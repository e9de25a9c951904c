/**
 * Firmware releases: image, versions, hardware compatibility, SBOM, accepted only with targets
 * metadata the product line's release keys signed. A release is refused whole unless, in one
 * transaction, the product line's new metadata is accepted by the image repository, names this
 * version's target with its custom fields, the blob store holds that exact image, and its
 * attestations satisfy the product's release policy (updates/provenance.ts). A release the policy
 * refuses is kept as a refusal with its reason, and never published.
 */
import semver from 'semver';
import { targetNameOf, type ImageTargetCustom, type ReleaseView } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { BoundedCache } from '../bounded-cache.js';
import type { Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import { BulwarkError, NotFoundError, ValidationError } from '../errors.js';
import { definePolicy, evaluateRelease, ReleasePolicyError, type ReleasePolicy, type ReleaseProvenance } from './provenance.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { newId } from '../tokens.js';
import type { BlobStore } from './blobs.js';
import { ImageMissingError, ReleaseExistsError, ReleaseInvalidError } from './errors.js';
import { ReleaseStore, type RefusalRow, type ReleaseRow } from './release-store.js';
import type { TufRepository } from './repository.js';
import { validateSbom } from './sbom.js';
import type { Executor } from '../storage/executor.js';

/** A release as the domain holds it: the wire view (@bulwark/protocol) with its organization, its time in milliseconds. */
export interface Release extends Omit<ReleaseView, 'createdAt'> {
  organizationId: string;
  createdAt: number;
}

/** A release its product's policy refused. */
export interface ReleaseRefusal {
  id: string;
  productId: string;
  version: string;
  sha256: string;
  code: string;
  reason: string;
  createdAt: number;
}

export interface NewRelease {
  productId: string;
  version: string;
  notes: string;
  /** CycloneDX JSON. */
  sbom: unknown;
  /** The product line's new signed delegated targets metadata. */
  metadata: unknown;
  /** DSSE envelopes of in-toto statements about the image: SLSA provenance, test results. */
  attestations?: unknown[];
}

export const MAX_NOTES = 20_000;

function toRelease(row: ReleaseRow): Release {
  return {
    id: row.id,
    organizationId: row.organization_id,
    productId: row.product_id,
    version: row.version,
    securityVersion: row.security_version,
    hardwareIds: JSON.parse(row.hardware_ids) as string[],
    targetName: row.target_name,
    sha256: row.sha256,
    length: Number(row.length),
    notes: row.notes,
    createdAt: Number(row.created_at),
    provenance: row.provenance ? (JSON.parse(row.provenance) as ReleaseProvenance) : null,
  };
}

function toRefusal(row: RefusalRow): ReleaseRefusal {
  return {
    id: row.id,
    productId: row.product_id,
    version: row.version,
    sha256: row.sha256,
    code: row.code,
    reason: row.reason,
    createdAt: Number(row.created_at),
  };
}

/** The signed custom fields of the release's target, which must say what the request says. */
function checkCustom(custom: Record<string, unknown>, productId: string, version: string): ImageTargetCustom {
  const problems: string[] = [];
  if (custom.product !== productId) problems.push(`custom.product is ${JSON.stringify(custom.product)}, not the product ${productId}`);
  if (custom.version !== version) problems.push(`custom.version is ${JSON.stringify(custom.version)}, not ${version}`);
  const securityVersion = custom.securityVersion;
  if (typeof securityVersion !== 'number' || !Number.isSafeInteger(securityVersion) || securityVersion < 0)
    problems.push('custom.securityVersion must be a whole number from 0');
  const hardwareIds = custom.hardwareIds;
  if (
    !Array.isArray(hardwareIds) ||
    hardwareIds.length === 0 ||
    hardwareIds.some((h) => typeof h !== 'string' || h.length === 0 || h.length > 128)
  ) {
    problems.push('custom.hardwareIds must be a non-empty list of hardware IDs (strings of 1-128 characters)');
  }
  if (problems.length > 0)
    throw new ReleaseInvalidError(`The signed target does not match the release: ${problems.join('; ')}`, { problems });
  return { product: productId, version, securityVersion: securityVersion as number, hardwareIds: hardwareIds as string[] };
}

export class ReleaseService {
  private readonly store: ReleaseStore;
  /**
   * Images a release names, by organization, target and hash: every device of a rollout downloads
   * the same one. Releases are only ever inserted (never changed or deleted), so a yes stays true;
   * a no is not kept (a release published since, here or on another node, is served at once).
   */
  private readonly released = new BoundedCache<true>(10_000);

  constructor(
    readonly db: Executor,
    readonly blobs: BlobStore,
    readonly repository: TufRepository,
    readonly devices: DevicesService,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {
    this.store = new ReleaseStore(db);
  }

  /** Publishes a release (see the module comment); every refusal is audited as denied. */
  async create(actor: Actor, input: NewRelease): Promise<Release> {
    requirePermission(actor, 'firmware:release');
    const org = actor.organizationId;
    const event = { organizationId: org, actor: auditActor(actor), action: 'update.release_created', sourceIp: actor.sourceIp };
    // Set while the policy is checked: a refusal there is kept (the rest of the transaction is rolled back).
    const checking: { policyOf: string | null } = { policyOf: null };
    try {
      if (semver.valid(input.version) !== input.version)
        throw new ValidationError(`version "${input.version}" must be a semantic version such as 1.4.0 (no leading "v")`, {
          field: 'version',
        });
      if (input.notes.length > MAX_NOTES) throw new ValidationError(`notes must be at most ${MAX_NOTES} characters`, { field: 'notes' });
      const sbom = validateSbom(input.sbom);
      // Products are never deleted, so checking before the transaction holds for its length.
      // firmware:release (checked above) is what publishing needs; devices:read is not asked for.
      if (!(await this.devices.productOf(org, input.productId))) throw new NotFoundError(`Product ${input.productId}`);
      await this.repository.onlineKeys(org);
      const targetName = targetNameOf(input.productId, input.version);

      const release = await this.db.transaction().execute(async (trx) => {
        if ((await this.store.idOfVersion(org, input.productId, input.version, trx)) !== undefined)
          throw new ReleaseExistsError(input.productId, input.version);
        const metadata = await this.repository.acceptProductMetadata(actor, input.productId, input.metadata, trx);
        const target = metadata.signed.targets[targetName];
        if (!target)
          throw new ReleaseInvalidError(
            `The signed metadata has no target ${targetName}: sign the image with \`bulwark firmware sign --product ${input.productId} --version ${input.version}\``,
            { target: targetName },
          );
        const custom = checkCustom(target.custom, input.productId, input.version);
        const sha256 = target.hashes.sha256!;
        const blob = await this.blobs.stat(sha256);
        if (!blob || blob.length !== target.length) throw new ImageMissingError(sha256, target.length, blob?.length ?? null);
        checking.policyOf = sha256;
        const provenance = evaluateRelease(await this.policyRow(org, input.productId, trx), input.attestations ?? [], sha256);
        checking.policyOf = null;
        const row: ReleaseRow = {
          id: newId(),
          organization_id: org,
          product_id: input.productId,
          version: input.version,
          security_version: custom.securityVersion,
          hardware_ids: JSON.stringify(custom.hardwareIds),
          target_name: targetName,
          sha256,
          length: target.length,
          notes: input.notes,
          sbom: JSON.stringify(input.sbom),
          created_by: actor.userId,
          created_at: this.clock.now(),
          provenance: provenance ? JSON.stringify(provenance) : null,
        };
        await this.store.insert(row, trx);
        await this.audit.record(
          {
            ...event,
            target: { type: 'firmware_release', id: row.id },
            details: {
              productId: input.productId,
              version: input.version,
              securityVersion: custom.securityVersion,
              hardwareIds: custom.hardwareIds,
              sha256,
              length: target.length,
              metadataVersion: metadata.signed.version,
              sbomComponents: sbom.components,
              ...(provenance ? { provenance } : {}),
            },
          },
          trx,
        );
        return toRelease(row);
      });
      // The new timestamp and snapshot, served by this process's repository from now on (tuf/latest-cache.ts).
      this.repository.metadataChanged(org);
      return release;
    } catch (caught) {
      let error = isUniqueViolation(caught) ? new ReleaseExistsError(input.productId, input.version) : caught;
      let refusalId: string | undefined;
      if (error instanceof ReleasePolicyError && checking.policyOf) {
        refusalId = newId();
        await this.store.insertRefusal({
          id: refusalId,
          organization_id: org,
          product_id: input.productId,
          version: input.version,
          sha256: checking.policyOf,
          code: error.code,
          reason: error.message,
          created_by: actor.userId,
          created_at: this.clock.now(),
        });
        error = new ReleasePolicyError(error.code, error.message, { ...(error.details ?? {}), refusalId });
      }
      if (error instanceof BulwarkError) {
        await this.audit.record({
          ...event,
          target: { type: 'product', id: input.productId },
          outcome: 'denied',
          details: { version: input.version, code: error.code, reason: error.message, ...(refusalId ? { refusalId } : {}) },
        });
      }
      throw error;
    }
  }

  private async policyRow(organizationId: string, productId: string, db: Executor = this.db): Promise<ReleasePolicy | null> {
    const policy = await this.store.policy(organizationId, productId, db);
    return policy !== undefined ? (JSON.parse(policy) as ReleasePolicy) : null;
  }

  /** A product's release policy (null when none is set: releases need no attestation). */
  async policy(actor: Actor, productId: string): Promise<ReleasePolicy | null> {
    requirePermission(actor, 'firmware:read');
    if (!(await this.devices.productOf(actor.organizationId, productId))) throw new NotFoundError(`Product ${productId}`);
    return this.policyRow(actor.organizationId, productId);
  }

  /**
   * Sets a product's release policy. It needs org:manage (owners and admins), not firmware:release:
   * whoever publishes releases, a CI key included, cannot weaken the gate they must pass. Audited
   * with the policy before and after.
   */
  async setPolicy(actor: Actor, productId: string, input: Partial<ReleasePolicy>): Promise<ReleasePolicy> {
    requirePermission(actor, 'org:manage');
    if (!(await this.devices.productOf(actor.organizationId, productId))) throw new NotFoundError(`Product ${productId}`);
    const policy = definePolicy(input);
    return this.db.transaction().execute(async (trx) => {
      const before = await this.policyRow(actor.organizationId, productId, trx);
      const row = {
        product_id: productId,
        organization_id: actor.organizationId,
        policy: JSON.stringify(policy),
        updated_by: actor.userId,
        updated_at: this.clock.now(),
      };
      await this.store.setPolicy(row, trx);
      await this.audit.recordBy(actor, 'update.release_policy_set', { type: 'product', id: productId }, { before, after: policy }, trx);
      return policy;
    });
  }

  /** Releases the product policies refused, newest first. */
  async refusals(actor: Actor, query: { productId?: string }): Promise<ReleaseRefusal[]> {
    requirePermission(actor, 'firmware:read');
    return (await this.store.refusals(actor.organizationId, query.productId)).map(toRefusal);
  }

  /** A refusal of the organization by ID, or null (a rollout naming it is told why it cannot start). */
  async refusal(organizationId: string, id: string, db: Executor = this.db): Promise<ReleaseRefusal | null> {
    const row = await this.store.refusal(organizationId, id, db);
    return row ? toRefusal(row) : null;
  }

  /** Whether a release of the organization names this image under this target (what the targets route serves). */
  async isReleased(organizationId: string, targetName: string, sha256: string): Promise<boolean> {
    const key = `${organizationId}\0${targetName}\0${sha256}`;
    if (this.released.get(key)) return true;
    const named = await this.store.names(organizationId, targetName, sha256);
    if (named) this.released.set(key, true);
    return named;
  }

  async list(actor: Actor, query: { productId?: string }): Promise<Release[]> {
    requirePermission(actor, 'firmware:read');
    return (await this.store.list(actor.organizationId, query.productId)).map(toRelease);
  }

  async getFor(actor: Actor, releaseId: string): Promise<Release> {
    requirePermission(actor, 'firmware:read');
    return this.get(actor.organizationId, releaseId);
  }

  /** The CycloneDX SBOM stored with a release, as it was published. */
  async sbom(actor: Actor, releaseId: string): Promise<Record<string, unknown>> {
    requirePermission(actor, 'firmware:read');
    const sbom = await this.store.sbom(actor.organizationId, releaseId);
    if (sbom === undefined) throw new NotFoundError(`Release ${releaseId}`);
    return JSON.parse(sbom) as Record<string, unknown>;
  }

  /** A release of the organization; NotFoundError otherwise. Inside a transaction pass it as `db` (SQLite has one connection). */
  async get(organizationId: string, releaseId: string, db: Executor = this.db): Promise<Release> {
    const release = await this.find(organizationId, releaseId, db);
    if (!release) throw new NotFoundError(`Release ${releaseId}`);
    return release;
  }

  /** A published release of the organization by ID, or null (a rollout naming none is told whether its policy refused it). */
  async find(organizationId: string, releaseId: string, db: Executor = this.db): Promise<Release | null> {
    const row = await this.store.release(organizationId, releaseId, db);
    return row ? toRelease(row) : null;
  }
}
