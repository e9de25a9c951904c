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

/** A passkey assertion that did not verify, whatever the cause: one answer, so nothing is learnt about credentials or accounts. */
export class PasskeyInvalidError extends AuthenticationError {
  constructor() {
    super('The passkey was not accepted, or the account is temporarily locked', ErrorCodes.passkeyInvalid);
  }
}

/** The ceremony's challenge is unknown, used, expired, or belongs to another session or caller. */
export class PasskeyChallengeError extends ValidationError {
  constructor() {
    super(
      'This passkey challenge is unknown, already used, expired, or was issued to another session: ask for new options and try again',
      undefined,
      ErrorCodes.passkeyChallengeInvalid,
    );
  }
}

/** The user's role must prove a passkey: a TOTP or recovery code does not complete this sign-in. */
export class PasskeyRequiredError extends ForbiddenError {
  constructor() {
    super('Your role must sign in with a passkey: use POST /api/v1/auth/passkeys/mfa/options', ErrorCodes.passkeyRequired, {
      next: '/api/v1/auth/passkeys/mfa/options',
    });
  }
}

/**
 * Why a passkey ceremony was refused, for the audit log and the lockout count; never sent to the
 * caller, who gets PasskeyInvalidError or PasskeyChallengeError.
 */
export class PasskeyRefusal extends Error {
  constructor(
    readonly reason: string,
    /** The account the credential belongs to, when known: its failure count grows. */
    readonly userId: string | null,
    readonly details: Record<string, unknown> = {},
  ) {
    super(reason);
  }
}
