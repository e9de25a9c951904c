/**
 * The root of Bulwark's error tree. Every error a caller may need to tell apart carries a
 * stable `code` and the HTTP status the transport answers with; domains extend these.
 */
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';

export class BulwarkError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that does not satisfy the contract of the operation. */
export class ValidationError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>, code: ErrorCode = ErrorCodes.requestInvalid) {
    super(code, message, 400, details);
  }
}

/** Data that should prove itself did not: an altered archive, a signature that does not verify (CLI exit 3). */
export class IntegrityError extends BulwarkError {
  constructor(message: string, code: ErrorCode, details?: Record<string, unknown>) {
    super(code, message, 422, details);
  }
}

/** The named resource does not exist, or the caller may not know that it exists. */
export class NotFoundError extends BulwarkError {
  constructor(what: string, details?: Record<string, unknown>) {
    super(ErrorCodes.notFound, `${what} was not found`, 404, details);
  }
}

/** The operation would break a uniqueness or state rule. */
export class ConflictError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>, code: ErrorCode = ErrorCodes.conflict) {
    super(code, message, 409, details);
  }
}

/** No valid credentials were presented. */
export class AuthenticationError extends BulwarkError {
  constructor(
    message = 'Authentication is required: send a session cookie or a bearer token',
    code: ErrorCode = ErrorCodes.unauthenticated,
    details?: Record<string, unknown>,
  ) {
    super(code, message, 401, details);
  }
}

/** The caller is known but may not do this. */
export class ForbiddenError extends BulwarkError {
  constructor(message: string, code: ErrorCode = ErrorCodes.forbidden, details?: Record<string, unknown>) {
    super(code, message, 403, details);
  }
}

/** Too many attempts; `retryAfterSeconds` tells when to come back. */
export class RateLimitedError extends BulwarkError {
  constructor(message: string, retryAfterSeconds: number) {
    super(ErrorCodes.rateLimited, message, 429, { retryAfterSeconds });
  }
}

/**
 * A message a device published that the platform refuses (bad payload, unknown command, invalid
 * update report...): answered on the device's error topic `d/<deviceId>/errors` with its code,
 * acknowledged and not stored (sending it again would fail the same way).
 */
export class DeviceMessageRefusal extends BulwarkError {
  constructor(code: ErrorCode, message: string) {
    super(code, message, 400);
  }
}
