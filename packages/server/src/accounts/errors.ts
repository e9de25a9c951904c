/**
 * Errors of the accounts domain. Authentication failures share one code and message whatever
 * the cause (unknown account, wrong password, locked), so answers never reveal which accounts exist.
 */
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { AuthenticationError, BulwarkError, ForbiddenError, ValidationError } from '../errors.js';

/** Wrong organization, email or password, or a locked account: deliberately indistinguishable. */
export class InvalidCredentialsError extends AuthenticationError {
  constructor() {
    super('The organization, email or password is incorrect, or the account is temporarily locked', ErrorCodes.invalidCredentials);
  }
}

/** A one-time token (reset, verification, invitation, pending MFA) that is unknown, used, superseded or expired. */
export class InvalidTokenError extends ValidationError {
  constructor(what: string) {
    super(`This ${what} link or token is invalid, already used, replaced by a newer one, or expired`, undefined, ErrorCodes.tokenInvalid);
  }
}

/** The session is limited to one step (change password, enrol or verify MFA) before anything else. */
export class RestrictedSessionError extends ForbiddenError {
  constructor(code: ErrorCode, message: string, next: string) {
    super(message, code, { next });
  }
}

/** A sensitive action needs a fresh second proof in this session. */
export class StepUpRequiredError extends BulwarkError {
  constructor(withinMinutes: number) {
    super(
      ErrorCodes.stepUpRequired,
      `This action needs you to confirm your identity again (within the last ${withinMinutes} minutes): POST /api/v1/auth/step-up with your TOTP code or password`,
      403,
      { next: '/api/v1/auth/step-up' },
    );
  }
}

export class MfaInvalidError extends AuthenticationError {
  constructor() {
    super('The authentication code is incorrect or was already used', ErrorCodes.mfaInvalid);
  }
}
