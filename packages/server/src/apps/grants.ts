/**
 * The token and revocation endpoints of the OAuth 2.1 server for companion apps: the
 * authorization_code grant (PKCE verifier required) and the refresh_token grant (no password
 * grant), revocation (RFC 7009), and the lifecycle of grants.
 *
 * A code spends on first presentation: a second one revokes the grant the first made. Refresh
 * tokens are opaque, stored as digests, bound to the client and rotated on each use inside a
 * family (the grant); a rotated token presented again revokes the whole family (access tokens
 * carry the family and die with it) and is audited. A consumer holds a bounded number of live
 * grants per app; ended grants are deleted a month later.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import type { AuditEvent, AuditService } from '../audit/service.js';
import { DAY, type Clock } from '../clock.js';
import { constantTimeEqual, newId, sha256Hex } from '../tokens.js';
import { looksLikeJwt, type AccessTokens } from './access-tokens.js';
import { OAuthError } from './errors.js';
import { parseScopes, scopesWithin, type AppScope, type ConsumerLookup } from './model.js';
import type { AppClientRow, AppStore, AuthorizationCodeRow, TokenFamilyRow } from './store.js';

export const REFRESH_TOKEN_PREFIX = 'bwr';
const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const OPAQUE = /^[a-z]{3}_[A-Za-z0-9_-]{43}$/;
/** Spent codes are kept this long past their expiry, so a late second use is still seen as reuse. */
const CODE_REUSE_MEMORY_MS = DAY;
/** Ended grants are kept this long (the consumer's list, the audit trail), then deleted with their tokens. */
const ENDED_GRANT_MEMORY_MS = 30 * DAY;
/** Live grants one consumer may hold for one app (one per device they use it on); a new one past it ends the oldest. */
export const MAX_GRANTS_PER_USER_AND_CLIENT = 20;

export interface AppGrantConfig {
  refreshTokenDays: number;
  grantMaxDays: number;
}

export interface TokenParams {
  grant_type?: string;
  client_id?: string;
  code?: string;
  redirect_uri?: string;
  code_verifier?: string;
  refresh_token?: string;
  scope?: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
}

export class AppGrantService {
  constructor(
    private readonly store: AppStore,
    private readonly tokens: AccessTokens,
    private readonly users: ConsumerLookup,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: AppGrantConfig,
  ) {}

  /** The token endpoint. */
  async token(params: TokenParams, sourceIp: string): Promise<TokenResponse> {
    if (params.grant_type === 'authorization_code') return this.exchangeCode(params, sourceIp);
    if (params.grant_type === 'refresh_token') return this.refresh(params, sourceIp);
    if (!params.grant_type) throw new OAuthError('invalid_request', ErrorCodes.appRequestInvalid, 'grant_type is required');
    throw new OAuthError(
      'unsupported_grant_type',
      ErrorCodes.appGrantTypeUnsupported,
      'Only the authorization_code (with PKCE) and refresh_token grants are supported',
    );
  }

  /**
   * Revocation (RFC 7009): a refresh token or an access token of this client ends its whole
   * family. An unknown token, or another client's, is answered the same (200) and changes nothing.
   */
  async revoke(params: { token?: string; client_id?: string }, sourceIp: string): Promise<void> {
    if (!params.token) throw new OAuthError('invalid_request', ErrorCodes.appRequestInvalid, 'token is required');
    const client = await this.activeClient(params.client_id);
    let familyId: string | undefined;
    if (OPAQUE.test(params.token) && params.token.startsWith(`${REFRESH_TOKEN_PREFIX}_`)) {
      familyId = (await this.store.refreshTokenByHash(sha256Hex(params.token)))?.family_id;
    } else if (looksLikeJwt(params.token)) {
      familyId = await this.tokens.verify(params.token).then(
        (claims) => claims.familyId,
        () => undefined,
      );
    }
    const family = familyId ? await this.store.family(familyId) : undefined;
    if (!family || family.client_id !== client.id) return;
    await this.store.db.transaction().execute(async (trx) => {
      if (await this.store.revokeFamily(family.id, this.clock.now(), 'revoked_by_client', trx))
        await this.audit.record(this.familyEvent(family, 'app.grant_revoked', sourceIp, {}), trx);
    });
  }

  private async exchangeCode(params: TokenParams, sourceIp: string): Promise<TokenResponse> {
    const missing = (['code', 'redirect_uri', 'code_verifier', 'client_id'] as const).filter((p) => !params[p]);
    if (missing.length > 0) {
      const code = missing.includes('code_verifier') ? ErrorCodes.appPkceRequired : ErrorCodes.appRequestInvalid;
      throw new OAuthError('invalid_request', code, `The authorization_code grant needs ${missing.join(', ')}`);
    }
    const client = await this.activeClient(params.client_id);
    const row = OPAQUE.test(params.code!) ? await this.store.codeByHash(sha256Hex(params.code!)) : undefined;
    if (!row) throw invalidGrant(ErrorCodes.appCodeInvalid, 'The authorization code is invalid');
    const now = this.clock.now();
    if (!(await this.store.spendCode(row.id, now))) {
      // A code presented twice was seen by someone else too: what the first use obtained is revoked.
      const revoked = await this.store.revokeFamilyOfCode(row.id, now, 'code_reused');
      await this.audit.record({ ...this.codeEvent(row, 'app.code_reused', sourceIp, { grantRevoked: revoked }), outcome: 'denied' });
      throw invalidGrant(ErrorCodes.appCodeReused, 'The authorization code was already used; the tokens issued for it are revoked');
    }
    const refusal = this.codeRefusal(row, client, params, now);
    if (refusal) {
      await this.audit.record({ ...this.codeEvent(row, 'app.code_rejected', sourceIp, { reason: refusal[0] }), outcome: 'denied' });
      throw invalidGrant(refusal[0], refusal[1]);
    }
    await this.requireActiveConsumer(row.user_id, row.organization_id);
    const family: TokenFamilyRow = {
      id: newId(),
      organization_id: row.organization_id,
      client_id: row.client_id,
      user_id: row.user_id,
      scopes: row.scopes,
      code_id: row.id,
      created_at: now,
      expires_at: now + this.config.grantMaxDays * DAY,
      revoked_at: null,
      revoked_reason: null,
      auth_time: row.auth_time,
    };
    const refreshToken = await this.store.db.transaction().execute(async (trx) => {
      await this.endOldestGrants(family, trx);
      await this.store.insertFamily(family, trx);
      await this.store.setCodeFamily(row.id, family.id, trx);
      const token = await this.newRefreshToken(family, trx);
      await this.audit.record(this.familyEvent(family, 'app.grant_issued', sourceIp, { scopes: parseScopes(row.scopes) }), trx);
      return token;
    });
    return this.tokenResponse(family, parseScopes(row.scopes), refreshToken);
  }

  private async refresh(params: TokenParams, sourceIp: string): Promise<TokenResponse> {
    if (!params.refresh_token || !params.client_id)
      throw new OAuthError('invalid_request', ErrorCodes.appRequestInvalid, 'The refresh_token grant needs refresh_token and client_id');
    const client = await this.activeClient(params.client_id);
    const invalid = () =>
      invalidGrant(ErrorCodes.appRefreshTokenInvalid, 'The refresh token is invalid, expired or revoked; sign in again');
    const row = OPAQUE.test(params.refresh_token) ? await this.store.refreshTokenByHash(sha256Hex(params.refresh_token)) : undefined;
    if (!row) throw invalid();
    const family = await this.store.family(row.family_id);
    const now = this.clock.now();
    if (!family || family.client_id !== client.id) throw invalid();
    if (!(await this.store.spendRefreshToken(row.id, now))) {
      // Reuse of a rotated token: the legitimate app and a thief hold the same family; end it for both.
      const revoked = await this.store.revokeFamily(family.id, now, 'refresh_token_reused');
      await this.audit.record({
        ...this.familyEvent(family, 'app.refresh_token_reused', sourceIp, { familyRevoked: revoked }),
        outcome: 'denied',
      });
      throw invalidGrant(ErrorCodes.appRefreshTokenReused, 'The refresh token was already used; every token of this grant is revoked');
    }
    if (family.revoked_at !== null || now >= family.expires_at || now >= row.expires_at) throw invalid();
    await this.requireActiveConsumer(family.user_id, family.organization_id);
    const granted = parseScopes(family.scopes);
    const scopes = params.scope === undefined ? granted : scopesWithin(params.scope, granted);
    if (typeof scopes === 'string') throw new OAuthError('invalid_scope', ErrorCodes.appScopeInvalid, scopes);
    const refreshToken = await this.store.db.transaction().execute((trx) => this.newRefreshToken(family, trx));
    return this.tokenResponse(family, scopes, refreshToken);
  }

  /** Deletes what has ended long enough ago: spent and expired refresh tokens, old grants, old codes (the periodic job). */
  async prune(): Promise<{ grants: number }> {
    const now = this.clock.now();
    await this.store.pruneCodes(now - CODE_REUSE_MEMORY_MS);
    return { grants: await this.store.prune(now, CODE_REUSE_MEMORY_MS, now - ENDED_GRANT_MEMORY_MS) };
  }

  /** Keeps a consumer's live grants for one app under the bound, ending the oldest to make room. */
  private async endOldestGrants(family: TokenFamilyRow, db: AppStore['db']): Promise<void> {
    const live = (await this.store.liveFamiliesOf(family.user_id, family.created_at, db))
      .filter((f) => f.client_id === family.client_id)
      .sort((a, b) => a.created_at - b.created_at);
    for (const old of live.slice(0, Math.max(0, live.length - MAX_GRANTS_PER_USER_AND_CLIENT + 1)))
      await this.store.revokeFamily(old.id, family.created_at, 'superseded', db);
  }

  private async tokenResponse(family: TokenFamilyRow, scopes: AppScope[], refreshToken: string): Promise<TokenResponse> {
    const access = await this.tokens.issue({
      userId: family.user_id,
      organizationId: family.organization_id,
      clientId: family.client_id,
      scopes,
      familyId: family.id,
    });
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      refresh_token: refreshToken,
      scope: scopes.join(' '),
    };
  }

  private async newRefreshToken(family: TokenFamilyRow, db: AppStore['db']): Promise<string> {
    const token = `${REFRESH_TOKEN_PREFIX}_${randomBytes(32).toString('base64url')}`;
    const now = this.clock.now();
    await this.store.insertRefreshToken(
      {
        id: newId(),
        family_id: family.id,
        token_hash: sha256Hex(token),
        created_at: now,
        expires_at: Math.min(now + this.config.refreshTokenDays * DAY, family.expires_at),
        used_at: null,
      },
      db,
    );
    return token;
  }

  /** Why a spent code gives no tokens to this request, or null when it does. */
  private codeRefusal(row: AuthorizationCodeRow, client: AppClientRow, params: TokenParams, now: number): [ErrorCode, string] | null {
    if (row.client_id !== client.id) return [ErrorCodes.appCodeInvalid, 'The authorization code was issued to another client'];
    if (now >= row.expires_at) return [ErrorCodes.appCodeInvalid, 'The authorization code has expired'];
    if (params.redirect_uri !== row.redirect_uri)
      return [ErrorCodes.appRedirectUriMismatch, 'redirect_uri differs from the one of the authorization request'];
    if (!CODE_VERIFIER.test(params.code_verifier!))
      return [ErrorCodes.appPkceVerifierInvalid, 'code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~'];
    const challenge = createHash('sha256').update(params.code_verifier!).digest('base64url');
    if (!constantTimeEqual(challenge, row.code_challenge))
      return [ErrorCodes.appPkceVerifierInvalid, 'code_verifier does not match the code_challenge of the authorization request'];
    return null;
  }

  private async activeClient(clientId: string | undefined): Promise<AppClientRow> {
    const client = clientId ? await this.store.client(clientId) : undefined;
    if (!client || client.status !== 'active')
      throw new OAuthError('invalid_client', ErrorCodes.appClientInvalid, 'client_id names no active app client', 401);
    return client;
  }

  private async requireActiveConsumer(userId: string, organizationId: string): Promise<void> {
    const user = await this.users.userById(userId);
    if (!user || user.status !== 'active' || user.kind !== 'consumer' || user.organization_id !== organizationId)
      throw invalidGrant(ErrorCodes.appAccessDenied, 'The account this grant is for is no longer active');
  }

  private codeEvent(row: AuthorizationCodeRow, action: string, sourceIp: string, details: Record<string, unknown>): AuditEvent {
    return {
      organizationId: row.organization_id,
      actor: { type: 'anonymous', id: null },
      action,
      target: { type: 'app_client', id: row.client_id },
      sourceIp,
      details: { userId: row.user_id, codeId: row.id, ...details },
    };
  }

  private familyEvent(family: TokenFamilyRow, action: string, sourceIp: string, details: Record<string, unknown>): AuditEvent {
    return {
      organizationId: family.organization_id,
      actor: { type: 'anonymous', id: null },
      action,
      target: { type: 'app_grant', id: family.id },
      sourceIp,
      details: { userId: family.user_id, clientId: family.client_id, ...details },
    };
  }
}

function invalidGrant(code: ErrorCode, message: string): OAuthError {
  return new OAuthError('invalid_grant', code, message);
}
