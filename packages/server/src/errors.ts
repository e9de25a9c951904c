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

/** Network errors of a connection to the database (or Redis) that did not get through or broke. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** node-postgres's own messages for a connection it lost or could not open. */
const PG_CONNECTION_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused)/;

/**
 * Whether `error` says the storage under the node is out of reach or out of room, rather than that
 * the request was wrong: the database is unreachable (a network error, PostgreSQL's connection
 * and shutdown SQLSTATEs 08xxx and 57P0x, node-postgres's own connection messages), PostgreSQL or
 * the disk is full (53xxx, ENOSPC, SQLITE_FULL), or the disk fails (SQLITE_IOERR, EIO). The HTTP
 * transport answers these 503 `storage.unavailable`, and the broker answers a CONNECT it could
 * not check "server unavailable" (retry) rather than "not authorized" (final).
 */
export function isStorageUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StorageUnavailableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNREACHABLE_CODES.has(code) || code === 'ENOSPC' || code === 'EIO') return true;
    if (/^(08|53|57P0)/.test(code) && code.length === 5) return true;
    if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') return true;
  }
  if (PG_CONNECTION_MESSAGES.test(error.message)) return true;
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error && isStorageUnavailable(cause);
}

/** The database (or disk) under this node cannot be used just now: answered 503, to be retried. */
export class StorageUnavailableError extends BulwarkError {
  constructor(message = 'The database is unreachable or full just now: nothing was changed; retry in a moment') {
    super(ErrorCodes.storageUnavailable, message, 503, { retryAfterSeconds: 5 });
  }
}
