/**
 * Errors of single sign-on. Each refusal of a sign-in carries its own code so an operator and the
 * audit log can tell a replay from a forged token from a provider that said no.
 */
import { ErrorCodes } from '@bulwark/protocol';
import { AuthenticationError, BulwarkError, ForbiddenError, ValidationError } from '../errors.js';

/** The organization has no single sign-on configured (or does not exist: the same answer). */
export class SsoNotConfiguredError extends BulwarkError {
  constructor() {
    super(ErrorCodes.ssoNotConfigured, 'Single sign-on is not configured for this organization', 404);
  }
}

/** A configuration value that cannot work (not https, unknown role, bad claim name...). */
export class SsoConfigInvalidError extends ValidationError {
  constructor(message: string, field: string) {
    super(message, { field }, ErrorCodes.ssoConfigInvalid);
  }
}

/** The callback's state is unknown, already used, expired, or was started by another browser. */
export class SsoStateInvalidError extends AuthenticationError {
  constructor(readonly reason: string) {
    super('This sign-in is unknown, already used, expired or was started elsewhere: start again', ErrorCodes.ssoStateInvalid, { reason });
  }
}

/** The provider answered the authorization or the code exchange with an error (e.g. access_denied). */
export class SsoProviderRefusedError extends AuthenticationError {
  constructor(readonly reason: string) {
    super(`The identity provider refused the sign-in (${reason})`, ErrorCodes.ssoProviderRefused, { reason });
  }
}

/** The provider could not be reached or its discovery document is unusable. */
export class SsoProviderUnreachableError extends BulwarkError {
  constructor(issuer: string, detail?: string) {
    super(
      ErrorCodes.ssoProviderUnreachable,
      `The identity provider ${issuer} could not be reached`,
      502,
      detail ? { issuer, detail } : { issuer },
    );
  }
}

/** The ID token failed validation: issuer, audience, nonce, expiry, signature or algorithm. */
export class SsoIdTokenInvalidError extends AuthenticationError {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(`The identity provider's ID token was refused: ${detail}`, ErrorCodes.ssoIdTokenInvalid, { reason });
  }
}

/** No claim value maps to a role and the organization names no default role. */
export class SsoNoRoleError extends ForbiddenError {
  constructor(claim: string) {
    super(`Your identity carries no ${claim} value that maps to a Bulwark role; ask an owner to map it`, ErrorCodes.ssoNoRole, { claim });
  }
}

/** A password account already holds the address the provider gave; it is never taken over by email. */
export class SsoAccountConflictError extends ForbiddenError {
  constructor() {
    super(
      'An account with this email already exists and is not linked to this identity; it is never taken over by email (linking an existing account is not built yet)',
      ErrorCodes.ssoAccountConflict,
    );
  }
}

/** Passwords are off for this organization's operators: sign in through the identity provider. */
export class SsoRequiredError extends ForbiddenError {
  constructor(organization: string) {
    super(
      `This organization signs its operators in through single sign-on: GET /api/v1/auth/sso/${organization}/start`,
      ErrorCodes.ssoRequired,
      { next: `/api/v1/auth/sso/${organization}/start` },
    );
  }
}
