/**
 * Turns a companion app's access token (a Bearer JWT) into the Actor of its consumer, acting
 * through the app: `via: 'app'`, no operator permissions, only the token's scopes (routes name
 * the scope they need: accounts/routes/authentication.ts). Beyond the signature and claims
 * (access-tokens.ts), each request checks the database: the token's family is live (revocation,
 * sign-out and password change end it at once, not when the token expires), the client is
 * active and the user is still an active consumer of the organization.
 *
 * Refusals are audited, at most once a minute per address and reason, so a flood of forged
 * tokens cannot flood the log.
 */
import type { AuditService } from '../audit/service.js';
import type { Authenticated, CredentialAuthenticator } from '../accounts/authenticate.js';
import type { Actor } from '../accounts/roles.js';
import { MINUTE, type Clock } from '../clock.js';
import { looksLikeJwt, type AccessTokenClaims, type AccessTokens } from './access-tokens.js';
import { AccessTokenInvalidError } from './errors.js';
import type { ConsumerLookup } from './model.js';
import type { AppStore } from './store.js';

const AUDIT_THROTTLE_ENTRIES = 10_000;

export class AppTokenAuthenticator implements CredentialAuthenticator {
  /** JWTs carry no prefix of ours: `matches` recognizes them by shape. */
  readonly prefix = 'eyJ';
  private readonly audited = new Map<string, number>();

  constructor(
    private readonly tokens: AccessTokens,
    private readonly store: AppStore,
    private readonly users: ConsumerLookup,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  matches(token: string): boolean {
    return looksLikeJwt(token);
  }

  async authenticate(token: string, sourceIp: string): Promise<Authenticated | null> {
    try {
      const claims = await this.tokens.verify(token);
      return { actor: await this.actorOf(claims, sourceIp), session: null };
    } catch (error) {
      if (error instanceof AccessTokenInvalidError) await this.recordRefusal(error, sourceIp);
      throw error;
    }
  }

  private async actorOf(claims: AccessTokenClaims, sourceIp: string): Promise<Actor> {
    // Three independent reads, in parallel: one round trip of latency on PostgreSQL rather than three.
    const [family, client, user] = await Promise.all([
      this.store.family(claims.familyId),
      this.store.client(claims.clientId),
      this.users.userById(claims.userId),
    ]);
    // A validly signed token's grant existed: gone now means its account was deleted.
    if (!family || family.revoked_at !== null || this.clock.now() >= family.expires_at) throw new AccessTokenInvalidError('revoked');
    if (family.user_id !== claims.userId || family.client_id !== claims.clientId) throw new AccessTokenInvalidError('claims');
    if (!client || client.status !== 'active') throw new AccessTokenInvalidError('client_disabled');
    if (!user || user.status !== 'active' || user.kind !== 'consumer' || user.organization_id !== claims.organizationId)
      throw new AccessTokenInvalidError('user_inactive');
    return {
      kind: 'consumer',
      userId: user.id,
      organizationId: user.organization_id,
      role: null,
      permissions: new Set(),
      via: 'app',
      app: { clientId: claims.clientId, scopes: new Set(claims.scopes), tokenId: claims.tokenId },
      sessionId: null,
      apiKeyId: null,
      // The app's sign-in proved a factor then: a sensitive action (deleting the account) accepts it while it is recent.
      stepUpAt: family.auth_time,
      sourceIp,
    };
  }

  private async recordRefusal(error: AccessTokenInvalidError, sourceIp: string): Promise<void> {
    const key = `${sourceIp} ${error.reason}`;
    const now = this.clock.now();
    const last = this.audited.get(key);
    if (last !== undefined && now - last < MINUTE) return;
    if (this.audited.size >= AUDIT_THROTTLE_ENTRIES) this.audited.clear();
    this.audited.set(key, now);
    await this.audit.record({
      organizationId: null,
      actor: { type: 'anonymous', id: null },
      action: 'app.access_token_refused',
      sourceIp,
      outcome: 'denied',
      details: { reason: error.reason },
    });
  }
}
