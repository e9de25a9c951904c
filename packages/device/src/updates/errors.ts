/**
 * Why the update agent refused or abandoned an update: one class per reason, each with its stable
 * code from the protocol (UPDATE_ERROR_CODES), so the agent reports exactly what went wrong and
 * tests can tell the refusals apart.
 */
import type { UpdateErrorCode } from '@bulwark/protocol';
import { DeviceError } from '../errors.js';

/** Base of every update refusal. */
export class UpdateError extends DeviceError {
  constructor(
    code: UpdateErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message, code);
  }

  declare readonly code: UpdateErrorCode;
}

/** The downloaded image's hash (SHA-256, or another signed algorithm) is not the signed one (the partial file is deleted). */
export class HashMismatchError extends UpdateError {
  constructor(expected: string, actual: string, algorithm = 'sha256') {
    super('update.hash_mismatch', `The image's ${algorithm} is ${actual}; the signed metadata says ${expected}`, {
      expected,
      actual,
      algorithm,
    });
  }
}

/** The server sent more bytes than the signed length: the transfer was cut at once. */
export class LengthExceededError extends UpdateError {
  constructor(length: number) {
    super('update.length_exceeded', `The server sent more than the signed length of ${length} bytes`, { length });
  }
}

/** No byte arrived for the idle timeout, on every attempt allowed. */
export class DownloadStalledError extends UpdateError {
  constructor(idleMs: number, attempts: number) {
    super('update.download_stalled', `The download stalled (no data for ${idleMs} ms) on ${attempts} attempt(s)`, { idleMs, attempts });
  }
}

/** Signed metadata (image repository or director) has expired: possibly a freeze attack. */
export class MetadataExpiredError extends UpdateError {
  constructor(message: string) {
    super('update.metadata_expired', message);
  }
}

/** Signed metadata fails a signature, threshold, version, consistency or format check. */
export class MetadataInvalidError extends UpdateError {
  constructor(message: string) {
    super('update.metadata_invalid', message);
  }
}

/** The target is not newer than what runs, or below the anti-rollback counter. */
export class RollbackRefusedError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.rollback_refused', message, details);
  }
}

/** The image is not signed for this device's hardware. */
export class HardwareMismatchError extends UpdateError {
  constructor(hardwareId: string, allowed: string[]) {
    super('update.hardware_mismatch', `The image is signed for hardware ${allowed.join(', ') || '(none)'}, not ${hardwareId}`, {
      hardwareId,
      allowed,
    });
  }
}

/** The director names a target the image repository does not sign. */
export class TargetUnknownError extends UpdateError {
  constructor(target: string) {
    super('update.target_unknown', `The image repository has no signed target ${target}`, { target });
  }
}

/** The director's metadata is for another device, or disagrees with the image repository. */
export class DirectorMismatchError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.director_mismatch', message, details);
  }
}

/** The new image did not pass its health check in the trial boot: the device rolled back. */
export class HealthCheckFailedError extends UpdateError {
  constructor(message: string) {
    super('update.health_check_failed', message);
  }
}

/** The image is not of the device's pinned product (its signed custom.product, or the role that signed it). */
export class ProductMismatchError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.product_mismatch', message, details);
  }
}

/** The state directory pins no product, so no image can be checked against it. */
export class ProductUnpinnedError extends UpdateError {
  constructor() {
    super(
      'update.product_unpinned',
      'The agent state pins no product (set up before products were pinned): nothing is installed until `bulwark-agent pin --state DIR --product <productId>` names it',
    );
  }
}
