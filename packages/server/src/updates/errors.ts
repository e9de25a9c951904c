/**
 * Errors of the updates domain, each with a stable `update.*` code. Repository, metadata and
 * release errors live here; rollouts declare theirs beside their service, extending these.
 */
import { BulwarkError } from '../errors.js';

/** Base of every updates error. */
export class UpdateError extends BulwarkError {}

/** Why signed metadata was refused (in `details.reason`), so callers and tests can tell refusals apart. */
export type RejectionReason = 'malformed' | 'signature' | 'version' | 'expired' | 'keys' | 'delegation' | 'path' | 'target';

/** Signed metadata that fails a signature, threshold, version or expiry check. */
export class MetadataRejectedError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown> & { reason?: RejectionReason }) {
    super('update.metadata_rejected', message, 400, details);
  }
}

/** The root names online keys this server does not hold: the ceremony must be run against the current ones. */
export class OnlineKeyMismatchError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.online_key_mismatch', message, 409, details);
  }
}

/** An online key rotation is already pending: upload the root that names its keys, or cancel it, before starting another. */
export class OnlineRotationPendingError extends UpdateError {
  constructor(roles: string[]) {
    super(
      'update.online_rotation_pending',
      `An online key rotation (${roles.join(', ')}) is already pending: upload the root(s) that name its keys, or cancel it (\`bulwark keys rotate-online --cancel\`) first`,
      409,
      { roles },
    );
  }
}

/** No online key rotation is pending (nothing to cancel or to write roots for). */
export class NoOnlineRotationError extends UpdateError {
  constructor() {
    super('update.online_rotation_none', 'No online key rotation is pending: start one with `bulwark keys rotate-online`', 409);
  }
}

/** The repository lacks what the operation builds on (no root yet, no top-level targets yet). */
export class RepositoryNotReadyError extends UpdateError {
  constructor(message: string) {
    super('update.repository_not_ready', message, 409);
  }
}

/** Another upload wrote the same role's next version first. */
export class ConcurrentChangeError extends UpdateError {
  constructor(what: string) {
    super(
      'update.concurrent_change',
      `${what} was changed by another request at the same time; fetch the current state and try again`,
      409,
    );
  }
}

/** The release names an image the blob store does not hold with the signed length. */
export class ImageMissingError extends UpdateError {
  constructor(sha256: string, length: number, found: number | null) {
    super(
      'update.image_missing',
      found === null
        ? `The image ${sha256} is not uploaded: PUT /api/v1/updates/blobs/${sha256} first`
        : `The uploaded image ${sha256} is ${found} bytes but the signed target says ${length}: upload the image the metadata was signed for`,
      409,
      { sha256, length, found },
    );
  }
}

/** A release of this product with this version exists. */
export class ReleaseExistsError extends UpdateError {
  constructor(productId: string, version: string) {
    super('update.release_exists', `Product ${productId} already has a release ${version}: versions are never reused`, 409, {
      productId,
      version,
    });
  }
}

/** The release request does not match its signed target (missing target, custom fields, version). */
export class ReleaseInvalidError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.release_invalid', message, 400, details);
  }
}
