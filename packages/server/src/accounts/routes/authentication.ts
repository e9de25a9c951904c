/**
 * Who may call each route of the HTTP API. Each route declares it in `config.auth`; this hook
 * resolves the credential the transport read (bearer token or the session cookie), enforces
 * restricted session scopes, CSRF on cookie sessions, the principal kind and the declared
 * permission, and leaves the Actor on the request for the service call. Installed on the root
 * instance by the composition root (routes.ts) before any domain's routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { AuthenticationError, ForbiddenError } from '../../errors.js';
import { CSRF_HEADER, presentedCredential } from '../../transport/http/auth.js';
import type { Authenticator } from '../authenticate.js';
import { RestrictedSessionError } from '../errors.js';
import { requirePermission, type Actor, type AppScope, type Permission } from '../roles.js';
import type { SessionScope, SessionService } from '../sessions.js';
import type { SessionRow } from '../store.js';

export interface RouteAuth {
  /** Who may call: nobody needs to be signed in (`none`), or a signed-in principal of a kind. */
  principal: 'none' | 'any' | 'operator' | 'consumer';
  /** The permission the route needs (also enforced by the service). */
  permission?: Permission;
  /** Restricted session scopes that may use this route (e.g. changing the password). */
  allowScopes?: SessionScope[];
  /**
   * Whether API keys may call a route that declares no permission. They may not by default: a
   * key acts only through the permissions in its scopes, so the owner's own account settings
   * (sessions, MFA, profile) stay behind an interactive sign-in.
   */
  apiKeys?: boolean;
  /**
   * The OAuth scope a companion app's access token needs to call this route. Routes that name
   * none refuse app tokens: an app reaches only what its scopes were granted for.
   */
  appScope?: AppScope;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    actor: Actor | null;
    session: SessionRow | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const SCOPE_ERRORS: Record<Exclude<SessionScope, 'full'>, [ErrorCode, string, string]> = {
  password_change: [ErrorCodes.passwordChangeRequired, 'Change your password before doing anything else', 'POST /api/v1/me/password'],
  mfa_pending: [ErrorCodes.mfaRequired, 'Complete sign-in with your authentication code', 'POST /api/v1/auth/mfa'],
  mfa_enrollment: [
    ErrorCodes.mfaEnrollmentRequired,
    'Your role requires two-factor authentication: enrol an authenticator first',
    'POST /api/v1/me/mfa/totp',
  ],
  passkey_enrollment: [
    ErrorCodes.passkeyEnrollmentRequired,
    'Your role requires a passkey: register one first',
    'POST /api/v1/auth/passkeys/registration/options',
  ],
};

/** The actor of an authenticated route; routes call this rather than reading request.actor. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.actor) throw new AuthenticationError();
  return request.actor;
}

export function sessionOf(request: FastifyRequest): SessionRow {
  if (!request.session) throw new ForbiddenError('This action needs an interactive session, not an API key');
  return request.session;
}

export function installAuthentication(app: FastifyInstance, authenticator: Authenticator, sessions: SessionService): void {
  app.decorateRequest('actor', null);
  app.decorateRequest('session', null);

  app.addHook('onRequest', async (request) => {
    const auth = request.routeOptions.config.auth;
    if (!auth || auth.principal === 'none') return;
    const presented = presentedCredential(request);
    if (!presented) throw new AuthenticationError();
    const result = await authenticator.authenticate(presented.token, request.ip, presented.transport);
    if (!result)
      throw new AuthenticationError('The session or API key is invalid, expired or revoked; sign in again', ErrorCodes.unauthenticated);
    const { actor, session } = result;
    if (session && session.scope !== 'full' && !auth.allowScopes?.includes(session.scope)) {
      const [code, message, next] = SCOPE_ERRORS[session.scope];
      throw new RestrictedSessionError(code, message, next);
    }
    if (
      presented.transport === 'cookie' &&
      !SAFE_METHODS.has(request.method) &&
      !sessions.verifyCsrf(session!.id, request.headers[CSRF_HEADER] as string | undefined)
    ) {
      throw new ForbiddenError(
        `Cookie sessions must send the ${CSRF_HEADER} header returned at sign-in on every state-changing request`,
        ErrorCodes.csrfFailed,
      );
    }
    if (auth.principal !== 'any' && actor.kind !== auth.principal) {
      throw new ForbiddenError(`This route is for ${auth.principal} accounts only`);
    }
    if (actor.via === 'api_key' && !auth.permission && !auth.apiKeys) {
      throw new ForbiddenError(
        'This route needs an interactive session: an API key acts only through the permissions in its scopes',
        ErrorCodes.forbidden,
      );
    }
    if (actor.via === 'app') {
      if (!auth.appScope) throw new ForbiddenError('App access tokens cannot call this route', ErrorCodes.appTokenNotAllowed);
      if (!actor.app?.scopes.has(auth.appScope)) {
        throw new ForbiddenError(
          `This route needs the ${auth.appScope} scope, which the access token was not granted`,
          ErrorCodes.insufficientScope,
          {
            scope: auth.appScope,
          },
        );
      }
    }
    if (auth.permission) requirePermission(actor, auth.permission);
    request.actor = actor;
    request.session = session;
  });
}
