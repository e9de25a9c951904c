/**
 * The authorization endpoint of the OAuth 2.1 server for companion apps: the authorization code
 * with PKCE (S256 only; no implicit flow), consent for third-party clients, and errors sent back
 * on the redirect URI only once the client and the exact redirect URI are known good. Codes live
 * 60 s, are stored as digests and are bound to client, redirect URI, code challenge and scopes;
 * redeeming them is grants.ts.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import type { AuditEvent, AuditService } from '../audit/service.js';
import { auditActor, type Actor } from '../accounts/roles.js';
import type { Clock } from '../clock.js';
import { newId, sha256Hex } from '../tokens.js';
import { UntrustedRedirectError, type OAuthErrorName } from './errors.js';
import { parseScopes, scopesWithin, type AppClientPublicView, type AppScope, type OrganizationLookup } from './model.js';
import type { AppClientRow, AppStore } from './store.js';

export const AUTHORIZATION_CODE_PREFIX = 'bwc';
const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_STATE_LENGTH = 1024;

export interface AppAuthorizationConfig {
  codeLifetimeSeconds: number;
}

/** The parameters of an authorization request, as the query string or the consent form gave them. */
export interface AuthorizationParams {
  response_type?: string;
  client_id?: string;
  redirect_uri?: string;
  scope?: string;
  state?: string;
  code_challenge?: string;
  code_challenge_method?: string;
}

/** A request that passed every check: what the consent step shows and what a code is bound to. */
interface ValidRequest {
  client: AppClientRow;
  redirectUri: string;
  scopes: AppScope[];
  state: string | undefined;
  codeChallenge: string;
}

export type AuthorizationOutcome =
  | { kind: 'redirect'; location: string }
  | { kind: 'consent'; client: { clientId: string; name: string }; scopes: AppScope[]; request: AuthorizationParams };

/** An error of the authorization endpoint that goes back to the client on its (valid) redirect URI. */
class RedirectedError extends Error {
  constructor(
    readonly oauth: OAuthErrorName,
    readonly code: ErrorCode,
    readonly description: string,
  ) {
    super(description);
  }
}

export class AppAuthorizationService {
  constructor(
    private readonly store: AppStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: AppAuthorizationConfig,
    private readonly organizations: OrganizationLookup,
  ) {}

  /**
   * Which app asks and for which brand, for the hosted page before the consumer signs in: only an
   * active client, and (when `redirectUri` is given) only with one of its registered redirect URIs,
   * so the page can show a bad request's error before asking anyone to sign in.
   */
  async describeClient(clientId: string, redirectUri: string | undefined): Promise<AppClientPublicView> {
    const { client } =
      redirectUri === undefined
        ? { client: await this.activeClient(clientId) }
        : await this.trustedTarget({ client_id: clientId, redirect_uri: redirectUri });
    const organization = await this.organizations.organizationById(client.organization_id);
    if (!organization)
      throw new UntrustedRedirectError('invalid_request', ErrorCodes.appClientInvalid, 'client_id names no active app client');
    return {
      clientId: client.id,
      name: client.name,
      firstParty: client.first_party === 1,
      organization: { slug: organization.slug, name: organization.name },
    };
  }

  /**
   * The authorization endpoint: a code on the redirect URI when the client is first-party or the
   * consumer already consented to these scopes, else the consent the consumer must give.
   */
  async authorize(actor: Actor, params: AuthorizationParams): Promise<AuthorizationOutcome> {
    const { client, redirectUri } = await this.trustedTarget(params);
    let request: ValidRequest;
    try {
      request = this.validate(actor, client, redirectUri, params);
    } catch (error) {
      return this.refuse(actor, client, redirectUri, params.state, error);
    }
    if (client.first_party === 1 || (await this.consentCovers(actor.userId, client.id, request.scopes))) {
      return { kind: 'redirect', location: await this.issueCode(actor, request) };
    }
    return {
      kind: 'consent',
      client: { clientId: client.id, name: client.name },
      scopes: request.scopes,
      request: {
        response_type: 'code',
        client_id: client.id,
        redirect_uri: redirectUri,
        scope: request.scopes.join(' '),
        ...(request.state !== undefined ? { state: request.state } : {}),
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      },
    };
  }

  /** The consumer's answer to the consent request: recorded and answered with a code, or access_denied. */
  async consent(actor: Actor, params: AuthorizationParams, decision: 'allow' | 'deny'): Promise<{ location: string }> {
    const { client, redirectUri } = await this.trustedTarget(params);
    let request: ValidRequest;
    try {
      request = this.validate(actor, client, redirectUri, params);
      if (decision === 'deny') throw new RedirectedError('access_denied', ErrorCodes.appAccessDenied, 'The user denied the request');
    } catch (error) {
      const outcome = await this.refuse(actor, client, redirectUri, params.state, error);
      return { location: outcome.location };
    }
    const now = this.clock.now();
    const existing = await this.store.consent(actor.userId, client.id);
    const scopes = [...new Set([...(existing ? parseScopes(existing.scopes) : []), ...request.scopes])];
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.saveConsent(
        {
          id: existing?.id ?? newId(),
          organization_id: actor.organizationId,
          user_id: actor.userId,
          client_id: client.id,
          scopes: JSON.stringify(scopes),
          created_at: existing?.created_at ?? now,
          updated_at: now,
        },
        trx,
      );
      await this.audit.record(this.event(actor, 'app.consent_granted', client.id, { scopes: request.scopes }), trx);
    });
    return { location: await this.issueCode(actor, request) };
  }

  /** The client and redirect URI of an authorization request, both checked before anything is redirected to. */
  private async trustedTarget(params: AuthorizationParams): Promise<{ client: AppClientRow; redirectUri: string }> {
    const client = await this.activeClient(params.client_id);
    if (!params.redirect_uri || !registeredUris(client).includes(params.redirect_uri))
      throw new UntrustedRedirectError(
        'invalid_request',
        ErrorCodes.appRedirectUriMismatch,
        'redirect_uri must be given and equal one of the URIs registered for this client, exactly',
      );
    return { client, redirectUri: params.redirect_uri };
  }

  private async activeClient(clientId: string | undefined): Promise<AppClientRow> {
    const client = clientId ? await this.store.client(clientId) : undefined;
    if (!client || client.status !== 'active')
      throw new UntrustedRedirectError('invalid_request', ErrorCodes.appClientInvalid, 'client_id names no active app client');
    return client;
  }

  private validate(actor: Actor, client: AppClientRow, redirectUri: string, params: AuthorizationParams): ValidRequest {
    if (params.state !== undefined && params.state.length > MAX_STATE_LENGTH)
      throw new RedirectedError('invalid_request', ErrorCodes.appRequestInvalid, `state must be at most ${MAX_STATE_LENGTH} characters`);
    if (actor.kind !== 'consumer' || actor.organizationId !== client.organization_id)
      throw new RedirectedError('access_denied', ErrorCodes.appAccessDenied, 'Only consumers of this app’s organization may authorize it');
    if (params.response_type !== 'code')
      throw new RedirectedError(
        'unsupported_response_type',
        ErrorCodes.appResponseTypeUnsupported,
        'response_type must be code (the implicit flow is not supported)',
      );
    if (!params.code_challenge)
      throw new RedirectedError(
        'invalid_request',
        ErrorCodes.appPkceRequired,
        'PKCE is required: send code_challenge and code_challenge_method=S256',
      );
    if (params.code_challenge_method !== 'S256')
      throw new RedirectedError(
        'invalid_request',
        ErrorCodes.appPkceMethodUnsupported,
        'code_challenge_method must be S256 (plain is refused)',
      );
    if (!CODE_CHALLENGE.test(params.code_challenge))
      throw new RedirectedError(
        'invalid_request',
        ErrorCodes.appPkceRequired,
        'code_challenge must be the base64url SHA-256 of the verifier (43 characters)',
      );
    if (!params.scope) throw new RedirectedError('invalid_scope', ErrorCodes.appScopeInvalid, 'scope is required');
    const scopes = scopesWithin(params.scope, parseScopes(client.scopes));
    if (typeof scopes === 'string') throw new RedirectedError('invalid_scope', ErrorCodes.appScopeInvalid, scopes);
    return { client, redirectUri, scopes, state: params.state, codeChallenge: params.code_challenge };
  }

  private async consentCovers(userId: string, clientId: string, scopes: AppScope[]): Promise<boolean> {
    const consent = await this.store.consent(userId, clientId);
    if (!consent) return false;
    const given = parseScopes(consent.scopes);
    return scopes.every((s) => given.includes(s));
  }

  private async issueCode(actor: Actor, request: ValidRequest): Promise<string> {
    const code = `${AUTHORIZATION_CODE_PREFIX}_${randomBytes(32).toString('base64url')}`;
    const now = this.clock.now();
    await this.store.insertCode({
      id: newId(),
      code_hash: sha256Hex(code),
      organization_id: request.client.organization_id,
      client_id: request.client.id,
      user_id: actor.userId,
      session_id: actor.sessionId,
      redirect_uri: request.redirectUri,
      code_challenge: request.codeChallenge,
      scopes: JSON.stringify(request.scopes),
      created_at: now,
      expires_at: now + this.config.codeLifetimeSeconds * 1000,
      used_at: null,
      family_id: null,
      auth_time: actor.stepUpAt,
    });
    return redirectTo(request.redirectUri, { code, ...(request.state !== undefined ? { state: request.state } : {}) });
  }

  private async refuse(
    actor: Actor,
    client: AppClientRow,
    redirectUri: string,
    state: string | undefined,
    error: unknown,
  ): Promise<{ kind: 'redirect'; location: string }> {
    if (!(error instanceof RedirectedError)) throw error;
    await this.audit.record({
      ...this.event(actor, 'app.authorization_refused', client.id, { error: error.oauth, code: error.code, reason: error.description }),
      organizationId: client.organization_id,
      outcome: 'denied',
    });
    const echoed: Record<string, string> = state !== undefined && state.length <= MAX_STATE_LENGTH ? { state } : {};
    return { kind: 'redirect', location: redirectTo(redirectUri, { error: error.oauth, error_description: error.description, ...echoed }) };
  }

  private event(actor: Actor, action: string, clientId: string, details: Record<string, unknown>): AuditEvent {
    return {
      organizationId: actor.organizationId,
      actor: auditActor(actor),
      action,
      target: { type: 'app_client', id: clientId },
      sourceIp: actor.sourceIp,
      details,
    };
  }
}

function registeredUris(client: AppClientRow): string[] {
  return JSON.parse(client.redirect_uris) as string[];
}

/** The redirect URI with the answer's parameters added to its query. */
function redirectTo(redirectUri: string, params: Record<string, string>): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}
