/**
 * Firmware releases: image, versions, hardware compatibility, SBOM, accepted only with targets
 * metadata the product line's release keys signed. A release is refused whole unless, in one
 * transaction, the product line's new metadata is accepted by the image repository, names this
 * version's target with its custom fields, and the blob store holds that exact image.
 */
import type { Kysely } from 'kysely';
import semver from 'semver';
import { targetNameOf, type ImageTargetCustom } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import { BulwarkError, NotFoundError, ValidationError } from '../errors.js';
import type { Database, FirmwareReleasesTable } from '../storage/schema.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { newId } from '../tokens.js';
import type { BlobStore } from './blobs.js';
import { ImageMissingError, ReleaseExistsError, ReleaseInvalidError } from './errors.js';
import type { TufRepository } from './repository.js';
import { validateSbom } from './sbom.js';

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

export interface NewRelease {
  productId: string;
  version: string;
  notes: string;
  /** CycloneDX JSON. */
  sbom: unknown;
  /** The product line's new signed delegated targets metadata. */
  metadata: unknown;
}

export const MAX_NOTES = 20_000;

function toRelease(row: FirmwareReleasesTable): Release {
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
  constructor(
    readonly db: Kysely<Database>,
    readonly blobs: BlobStore,
    readonly repository: TufRepository,
    readonly devices: DevicesService,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {}

  /** Publishes a release (see the module comment); every refusal is audited as denied. */
  async create(actor: Actor, input: NewRelease): Promise<Release> {
    requirePermission(actor, 'firmware:release');
    const org = actor.organizationId;
    const event = { organizationId: org, actor: auditActor(actor), action: 'update.release_created', sourceIp: actor.sourceIp };
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
        const existing = await trx
          .selectFrom('firmware_releases')
          .select('id')
          .where('organization_id', '=', org)
          .where('product_id', '=', input.productId)
          .where('version', '=', input.version)
          .executeTakeFirst();
        if (existing) throw new ReleaseExistsError(input.productId, input.version);
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
        const row: FirmwareReleasesTable = {
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
        };
        await trx.insertInto('firmware_releases').values(row).execute();
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
            },
          },
          trx,
        );
        return toRelease(row);
      });
      return release;
    } catch (caught) {
      const error = isUniqueViolation(caught) ? new ReleaseExistsError(input.productId, input.version) : caught;
      if (error instanceof BulwarkError) {
        await this.audit.record({
          ...event,
          target: { type: 'product', id: input.productId },
          outcome: 'denied',
          details: { version: input.version, code: error.code, reason: error.message },
        });
      }
      throw error;
    }
  }

  async list(actor: Actor, query: { productId?: string }): Promise<Release[]> {
    requirePermission(actor, 'firmware:read');
    let q = this.db.selectFrom('firmware_releases').selectAll().where('organization_id', '=', actor.organizationId);
    if (query.productId) q = q.where('product_id', '=', query.productId);
    return (await q.orderBy('created_at', 'desc').orderBy('id').execute()).map(toRelease);
  }

  async getFor(actor: Actor, releaseId: string): Promise<Release> {
    requirePermission(actor, 'firmware:read');
    return this.get(actor.organizationId, releaseId);
  }

  /** A release of the organization; NotFoundError otherwise. Inside a transaction pass it as `db` (SQLite has one connection). */
  async get(organizationId: string, releaseId: string, db: Kysely<Database> = this.db): Promise<Release> {
    const row = await db
      .selectFrom('firmware_releases')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', releaseId)
      .executeTakeFirst();
    if (!row) throw new NotFoundError(`Release ${releaseId}`);
    return toRelease(row);
  }
}
