/**
 * Errors of the PKI domain, each with a stable code callers (and devices) can tell apart.
 */
import { BulwarkError, NotFoundError } from '../errors.js';

/** The CSR does not parse, or its signature does not verify with the key it carries. */
export class CsrInvalidError extends BulwarkError {
  constructor(message: string) {
    super('pki.csr_invalid', message, 400);
  }
}

/** The CSR's key is of a type or size the platform does not accept. */
export class WeakKeyError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('pki.weak_key', message, 400, details);
  }
}

/** The CSR names an identity other than the device the certificate is being issued for. */
export class IdentityMismatchError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('pki.identity_mismatch', message, 403, details);
  }
}

/** A device ID that cannot be carried in a certificate name. */
export class DeviceIdInvalidError extends BulwarkError {
  constructor(deviceId: string) {
    super('pki.device_id_invalid', 'Device ID must be 1-128 characters of A-Z, a-z, 0-9, ".", "_" or "-"', 400, { deviceId });
  }
}

/** No issued certificate has this serial. */
export class CertificateNotFoundError extends NotFoundError {
  constructor(serial: string) {
    super('Certificate', { serial });
  }
}

/** The certificate was already revoked. */
export class AlreadyRevokedError extends BulwarkError {
  constructor(serial: string) {
    super('pki.already_revoked', `Certificate ${serial} is already revoked`, 409, { serial });
  }
}
