/**
 * The binding domain's refusals, each with its stable code (docs/binding.md lists them). A
 * device the consumer has no standing on is a plain NotFoundError: the same answer as a device
 * that does not exist, so device IDs cannot be probed.
 */
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { BulwarkError, ConflictError, ForbiddenError } from '../errors.js';

/** A claim refused; the code says why (guessed or reused code, no presence, already bound). */
export class ClaimRefusedError extends BulwarkError {
  constructor(code: ErrorCode, message: string, status: number) {
    super(code, message, status);
  }
}

/** Too many failed claims from this account or address: claiming is locked for a while. */
export class ClaimLockedError extends BulwarkError {
  constructor(retryAfterSeconds: number) {
    super(
      ErrorCodes.claimLocked,
      `Too many failed claims: claiming is locked for ${retryAfterSeconds} s; check the code printed on the device`,
      429,
      { retryAfterSeconds },
    );
  }
}

/** The consumer's role on the device does not allow this (a guest sharing, a member transferring...). */
export class RoleInsufficientError extends ForbiddenError {
  constructor(needed: string, role: string) {
    super(`Your role on this device (${role}) cannot ${needed}`, ErrorCodes.bindingRoleInsufficient, { role });
  }
}

/** The device already has this many members, guests and pending invitations. */
export class ShareLimitError extends ConflictError {
  constructor(limit: number) {
    super(`A device is shared with at most ${limit} people (pending invitations count)`, { limit }, ErrorCodes.shareLimitReached);
  }
}

/** No invitation with this ID is addressed to the caller and still standing (unknown, expired, another's, or its sender no longer owns the device). */
export class InvitationInvalidError extends BulwarkError {
  constructor() {
    super(ErrorCodes.invitationInvalid, 'No invitation with this ID is waiting for you (it may have expired or been withdrawn)', 404);
  }
}
