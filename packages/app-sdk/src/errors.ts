/**
 * What the SDK throws, so an app can tell a refusal it should show (a wrong claim code, a share it
 * may not make) from a sign-in that has ended and from a network that is down.
 */

/** The platform refused the request: `code` is Bulwark's stable error code (`binding.claim_code_invalid`, ...). */
export class AppApiError extends Error {
  override readonly name = 'AppApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The sign-in is over (refresh token expired, revoked, or reused elsewhere): send the user through login again. */
export class SignInRequiredError extends Error {
  override readonly name = 'SignInRequiredError';
  constructor(
    message: string,
    readonly oauthError?: string,
  ) {
    super(message);
  }
}

/** The authorization server answered the redirect with an error, or the redirect does not belong to this login. */
export class AuthorizationError extends Error {
  override readonly name = 'AuthorizationError';
  constructor(
    readonly oauthError: string,
    message: string,
  ) {
    super(message);
  }
}
