/**
 * The errors of app authorization. An `OAuthError` carries, beside its Bulwark code, the RFC 6749
 * error name (`invalid_grant`, `invalid_request`...) the /oauth/* endpoints answer with; the
 * operator and consumer routes under /api/v1 answer with the Bulwark code as everywhere else.
 */
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { AuthenticationError, BulwarkError } from '../errors.js';

/** The error names of RFC 6749 §4.1.2.1 and §5.2 (and OpenID's `login_required`). */
export type OAuthErrorName =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'login_required'
  | 'server_error'
  | 'temporarily_unavailable';

/** A refusal of the authorization or token endpoint, with its RFC 6749 name. */
export class OAuthError extends BulwarkError {
  constructor(
    readonly oauthError: OAuthErrorName,
    code: ErrorCode,
    message: string,
    status = 400,
    details?: Record<string, unknown>,
  ) {
    super(code, message, status, details);
  }
}

/** The authorization request names no usable client or redirect URI: answered to the user, never redirected. */
export class UntrustedRedirectError extends OAuthError {}

/** Why an access token was refused (the `reason` detail of app.access_token_invalid). */
export type AccessTokenRefusal =
  | 'malformed'
  | 'algorithm'
  | 'key_unknown'
  | 'key_retired'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not_yet_valid'
  | 'claims'
  | 'revoked'
  | 'user_inactive'
  | 'client_disabled';

/** An access token that does not authenticate: 401 with the reason. */
export class AccessTokenInvalidError extends AuthenticationError {
  constructor(readonly reason: AccessTokenRefusal) {
    super(`The access token was refused (${reason.replace(/_/g, ' ')}); refresh it or sign in again`, ErrorCodes.appAccessTokenInvalid, {
      reason,
    });
  }
}
