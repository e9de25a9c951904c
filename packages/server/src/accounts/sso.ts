/**
 * Operators' single sign-on through each organization's OpenID Connect provider (issue 18): the
 * sign-in (start → provider → callback), just-in-time operator accounts matched by issuer +
 * subject, roles from a claim, Bulwark's MFA policy when the provider does not assert MFA, and the
 * gates other sign-ins pass through (SSO only with one break-glass owner; the bounds on an SSO
 * operator's sessions and API keys). Every refusal is audited with its code. The configuration is
 * sso-config.ts; the report of every operator's factors is security-report.ts.
 */
import { createHash } from 'node:crypto';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { DAY, MINUTE } from '../clock.js';
import { BulwarkError } from '../errors.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import { nextScope, statusOfScope, type LoginOutcome } from './login.js';
import type { IdTokenClaims, RelyingParty } from './oidc.js';
import { OPERATOR_ROLES, type OperatorRole } from './roles.js';
import type { AccountsService } from './service.js';
import type { SessionContext, SessionService } from './sessions.js';
import { SsoAccountConflictError, SsoNoRoleError, SsoNotConfiguredError, SsoRequiredError, SsoStateInvalidError } from './sso-errors.js';
import type { SsoConfigService } from './sso-config.js';
import type { SsoConfigRow, SsoStore } from './sso-store.js';
import type { AccountsStore, OrganizationRow, UserRow } from './store.js';
import { InvalidCredentialsError } from './errors.js';
import { newUserRow } from './store.js';
import type { Executor } from '../storage/executor.js';

/** How long a started sign-in waits for the provider's answer. */
const LOGIN_LIFETIME = 10 * MINUTE;
/** `amr` values that name more than one factor (RFC 8176). */
const MFA_AMR = ['mfa', 'otp', 'hwk', 'sc'];

/** What a password sign-in may do under the organization's SSO rule. */
export type PasswordGate = 'allowed' | 'break_glass';

/** The highest-ranked role any of the claim's values maps to (owner first), or null. */
export function mappedRole(claims: Record<string, unknown>, claim: string, mapping: Record<string, string>): OperatorRole | null {
  const raw = claims[claim];
  const values = Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : typeof raw === 'string' ? [raw] : [];
  const roles = new Set(values.map((v) => mapping[v]).filter((r): r is string => r !== undefined));
  return OPERATOR_ROLES.find((r) => roles.has(r)) ?? null;
}

/** True when the provider says the user proved more than one factor: an MFA `amr` value, or an `acr` the organization counts as MFA. */
export function providerAssertsMfa(claims: Record<string, unknown>, mfaAcrValues: string[]): boolean {
  const amr = Array.isArray(claims.amr) ? claims.amr : [];
  if (amr.some((v) => typeof v === 'string' && MFA_AMR.includes(v))) return true;
  return typeof claims.acr === 'string' && mfaAcrValues.includes(claims.acr);
}

export class SsoService {
  constructor(
    private readonly store: SsoStore,
    private readonly accounts: AccountsStore,
    private readonly accountsService: AccountsService,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly configs: SsoConfigService,
    private readonly clock: Clock,
    private readonly rp: RelyingParty,
  ) {}

  /**
   * Starts a sign-in: a state, nonce and PKCE verifier kept server-side for ten minutes, bound to
   * the browser by `browserToken` (the caller sets it as an HttpOnly cookie). Returns the provider URL.
   */
  async start(slug: string, transport: 'cookie' | 'bearer'): Promise<{ authorizationUrl: string; browserToken: string }> {
    const { config } = await this.configBySlug(slug);
    const request = await this.rp.authorizationRequest(this.configs.settings(config), config.redirect_uri, config.scopes);
    const browserToken = newSecret('bss');
    const now = this.clock.now();
    await this.store.pruneLogins(now - LOGIN_LIFETIME);
    await this.store.insertLogin({
      state_hash: sha256Hex(request.state),
      organization_id: config.organization_id,
      browser_hash: sha256Hex(browserToken),
      nonce: request.nonce,
      code_verifier: request.codeVerifier,
      transport,
      created_at: now,
      expires_at: now + LOGIN_LIFETIME,
      used_at: null,
    });
    return { authorizationUrl: request.url, browserToken };
  }

  /**
   * The provider's answer: the state must be one this browser started and not used; then the code
   * exchange and ID token validation (openid-client), the operator found by issuer + subject or
   * created just in time, the role from the claim, and a session whose next step follows the MFA policy.
   */
  async callback(
    slug: string,
    query: Record<string, string>,
    browserToken: string | undefined,
    context: SessionContext,
  ): Promise<LoginOutcome> {
    const found = await this.configBySlug(slug).catch(() => null);
    const organizationId = found?.org.id ?? null;
    try {
      if (!found) throw new SsoNotConfiguredError();
      const { org, config } = found;
      const state = query.state;
      if (!state) throw new SsoStateInvalidError('missing_state');
      const login = await this.store.consumeLogin(sha256Hex(state), this.clock.now());
      if (!login || login.organization_id !== org.id) throw new SsoStateInvalidError('unknown_or_used');
      if (login.expires_at <= this.clock.now()) throw new SsoStateInvalidError('expired');
      if (!browserToken || sha256Hex(browserToken) !== login.browser_hash) throw new SsoStateInvalidError('other_browser');
      const callbackUrl = new URL(config.redirect_uri);
      for (const [k, v] of Object.entries(query)) callbackUrl.searchParams.set(k, v);
      const claims = await this.rp.exchange(this.configs.settings(config), callbackUrl, {
        state,
        nonce: login.nonce,
        codeVerifier: login.code_verifier,
      });
      return await this.signIn(org, config, claims, { ...context, transport: login.transport });
    } catch (error) {
      if (error instanceof BulwarkError) {
        await this.audit.record({
          organizationId,
          actor: { type: 'anonymous', id: null },
          action: 'auth.sso_login',
          outcome: 'failure',
          sourceIp: context.sourceIp,
          details: { code: error.code, ...(error.details ?? {}) },
        });
      }
      throw error;
    }
  }

  /**
   * Whether a password sign-in of this user may go on: refused when the organization is SSO-only,
   * except for its break-glass owner (the caller audits that sign-in as such).
   */
  async passwordGate(org: OrganizationRow, user: UserRow): Promise<PasswordGate> {
    if (user.kind !== 'operator') return 'allowed';
    const config = await this.store.configOf(org.id);
    if (!config) return 'allowed';
    // An account made by single sign-on never signs in with a password (one set through a reset
    // would otherwise outlive the operator's removal at the provider).
    const viaSso = (await this.store.identitiesOf(user.id)).length > 0;
    if (!viaSso && config.sso_only !== 1) return 'allowed';
    if (!viaSso && config.break_glass_user_id === user.id && user.role === 'owner') return 'break_glass';
    throw new SsoRequiredError(org.slug);
  }

  /** The longest the session of an operator made by single sign-on may live (their organization's bound); null for others. */
  async sessionBound(user: UserRow, db: Executor): Promise<number | null> {
    if (user.kind !== 'operator') return null;
    if ((await this.store.identitiesOf(user.id, db)).length === 0) return null;
    const config = await this.store.configOf(user.organization_id, db);
    return config ? config.max_session_minutes * MINUTE : null;
  }

  /**
   * Whether an SSO-only operator's API key may act: only while they signed in through the provider
   * within the organization's `apiKeyReauthDays`. An operator removed at the provider cannot sign in
   * there again, so their keys stop within that bound even if nobody deprovisions them here.
   */
  async apiKeyAllowed(user: UserRow): Promise<boolean> {
    if (user.kind !== 'operator') return true;
    const identities = await this.store.identitiesOf(user.id);
    if (identities.length === 0) return true;
    const config = await this.store.configOf(user.organization_id);
    // SSO removed: the organization's operators made by it have no way in, keys included.
    if (!config) return false;
    const last = Math.max(...identities.map((i) => (i.last_sign_in_at === null ? 0 : Number(i.last_sign_in_at))));
    return this.clock.now() - last < config.api_key_reauth_days * DAY;
  }

  private async signIn(org: OrganizationRow, config: SsoConfigRow, claims: IdTokenClaims, context: SessionContext): Promise<LoginOutcome> {
    const mapping = JSON.parse(config.role_mapping) as Record<string, string>;
    const role = mappedRole(claims, config.role_claim, mapping) ?? (config.default_role as OperatorRole | null);
    const mfaAsserted = providerAssertsMfa(claims, JSON.parse(config.mfa_acr_values) as string[]);
    const email = typeof claims.email === 'string' && claims.email.length <= 254 ? claims.email.trim().toLowerCase() : null;
    const now = this.clock.now();
    const result = await this.store.db.transaction().execute(async (trx): Promise<LoginOutcome | BulwarkError> => {
      let identity = await this.store.identity(org.id, claims.iss, claims.sub, trx);
      let user = identity ? await this.accounts.userById(identity.user_id, trx) : undefined;
      if (identity && !user) {
        // The account it led to was deleted: the identity starts afresh.
        await this.store.deleteIdentity(identity.id, trx);
        identity = undefined;
      }
      if (!role) {
        // Removed from every mapped group at the provider: the account is disabled here too.
        if (user && user.status === 'active') await this.accountsService.disableForSso(user, 'no_role', trx);
        return new SsoNoRoleError(config.role_claim);
      }
      if (!user) {
        const address = email ?? `${createHash('sha256').update(`${claims.iss} ${claims.sub}`).digest('hex').slice(0, 20)}@sso.invalid`;
        if (await this.accounts.userByEmail(org.id, address, trx)) return new SsoAccountConflictError();
        user = newUserRow({
          organizationId: org.id,
          kind: 'operator',
          email: address,
          name: typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : address,
          role,
          passwordHash: null,
          emailVerifiedAt: email && claims.email_verified === true ? now : null,
          mustChangePassword: false,
          now,
        });
        await this.accounts.insertUser(user, trx);
        await this.store.insertIdentity(
          {
            id: newId(),
            organization_id: org.id,
            user_id: user.id,
            issuer: claims.iss,
            subject: claims.sub,
            email,
            last_sign_in_at: now,
            last_mfa_asserted: mfaAsserted ? 1 : 0,
            created_at: now,
          },
          trx,
        );
        await this.audit.record(
          {
            organizationId: org.id,
            actor: { type: 'system', id: null },
            action: 'user.created',
            target: { type: 'user', id: user.id },
            sourceIp: context.sourceIp,
            details: { role, via: 'sso', issuer: claims.iss, subject: claims.sub },
            personal: { subject: user.id, fields: { email: address } },
          },
          trx,
        );
      } else {
        if (user.status !== 'active') return new InvalidCredentialsError();
        await this.store.recordIdentitySignIn(identity!.id, now, mfaAsserted, email, trx);
        if (user.role !== role) {
          // The provider is the source of the role: a change there is applied at the next sign-in.
          await this.accounts.updateUser(user.id, { role, updated_at: now }, trx);
          await this.audit.record(
            {
              organizationId: org.id,
              actor: { type: 'system', id: null },
              action: 'user.role_changed',
              target: { type: 'user', id: user.id },
              sourceIp: context.sourceIp,
              details: { role, previousRole: user.role, via: 'sso' },
            },
            trx,
          );
          user = { ...user, role };
        }
      }
      // MFA asserted by the provider stands for Bulwark's own (no TOTP step, no enrolment); else the policy applies as to a password.
      const scope = mfaAsserted ? 'full' : nextScope(org, user, false);
      const issued = await this.sessions.issue(user, scope, context, trx, scope === 'full');
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'user', id: user.id },
          action: 'auth.sso_login',
          target: { type: 'user', id: user.id },
          sourceIp: context.sourceIp,
          details: { next: scope, transport: context.transport, role, mfaAsserted, issuer: claims.iss, subject: claims.sub },
        },
        trx,
      );
      return { status: statusOfScope(scope), issued, user };
    });
    // A refusal is thrown after the transaction commits: disabling an operator the provider no longer maps must stay.
    if (result instanceof BulwarkError) throw result;
    return result;
  }

  private async configBySlug(slug: string): Promise<{ org: OrganizationRow; config: SsoConfigRow }> {
    const org = await this.accounts.organizationBySlug(slug);
    const config = org ? await this.store.configOf(org.id) : undefined;
    if (!org || !config) throw new SsoNotConfiguredError();
    return { org, config };
  }
}
