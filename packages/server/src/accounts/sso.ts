/**
 * Operators' single sign-on through each organization's OpenID Connect provider (issue 18): the
 * configuration an owner sets (client secret sealed under the master key), the sign-in (start →
 * provider → callback), just-in-time operator accounts matched by issuer + subject, roles from a
 * claim, Bulwark's MFA policy when the provider does not assert MFA, the "SSO only" rule with one
 * break-glass owner, and the report of every operator's factors. Every refusal is audited with its code.
 */
import { createHash } from 'node:crypto';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { DAY, MINUTE } from '../clock.js';
import { BulwarkError, ValidationError } from '../errors.js';
import type { SecretBox } from '../keys/master-key.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import { mfaRequiredFor, nextScope, statusOfScope, type LoginOutcome } from './login.js';
import { RelyingParty, type IdTokenClaims, type RelyingPartySettings } from './oidc.js';
import { auditActor, isOperatorRole, OPERATOR_ROLES, requirePermission, type Actor, type OperatorRole } from './roles.js';
import type { AccountsService } from './service.js';
import type { SessionContext, SessionService } from './sessions.js';
import {
  SsoAccountConflictError,
  SsoConfigInvalidError,
  SsoNoRoleError,
  SsoNotConfiguredError,
  SsoRequiredError,
  SsoStateInvalidError,
} from './sso-errors.js';
import type { SsoConfigRow, SsoStore } from './sso-store.js';
import type { AccountsStore, Executor, OrganizationRow, UserRow } from './store.js';
import { InvalidCredentialsError } from './errors.js';
import { newUserRow } from './store.js';

/** How long a started sign-in waits for the provider's answer. */
const LOGIN_LIFETIME = 10 * MINUTE;
/** `amr` values that name more than one factor (RFC 8176). */
const MFA_AMR = ['mfa', 'otp', 'hwk', 'sc'];
const DEFAULT_MAX_SESSION_MINUTES = 60;
const DEFAULT_API_KEY_REAUTH_DAYS = 7;
const CLAIM_NAME = /^[A-Za-z0-9_:.\-/]{1,100}$/;

export interface SsoConfigInput {
  issuer: string;
  clientId: string;
  /** Required when first configuring; omitted later keeps the sealed one. */
  clientSecret?: string;
  redirectUri?: string;
  scopes?: string[];
  roleClaim?: string;
  roleMapping?: Record<string, string>;
  defaultRole?: string | null;
  mfaAcrValues?: string[];
  ssoOnly?: boolean;
  breakGlassUserId?: string | null;
  maxSessionMinutes?: number;
  apiKeyReauthDays?: number;
}

export interface SsoConfigView {
  issuer: string;
  clientId: string;
  clientSecretSet: true;
  redirectUri: string;
  scopes: string[];
  roleClaim: string;
  roleMapping: Record<string, string>;
  defaultRole: string | null;
  mfaAcrValues: string[];
  ssoOnly: boolean;
  breakGlassUserId: string | null;
  maxSessionMinutes: number;
  apiKeyReauthDays: number;
  updatedAt: string;
}

export interface OperatorSecurityView {
  id: string;
  email: string;
  role: string | null;
  status: 'active' | 'disabled';
  factors: { password: boolean; totp: boolean; sso: boolean };
  lastSignInAt: string | null;
  mfaRequired: boolean;
  meetsMfaPolicy: boolean;
  breakGlass: boolean;
}

export interface SecurityReport {
  organizationId: string;
  mfaRequiredRoles: string[];
  ssoConfigured: boolean;
  ssoOnly: boolean;
  operators: OperatorSecurityView[];
}

/** What a password sign-in may do under the organization's SSO rule. */
export type PasswordGate = 'allowed' | 'break_glass';

function toView(row: SsoConfigRow): SsoConfigView {
  return {
    issuer: row.issuer,
    clientId: row.client_id,
    clientSecretSet: true,
    redirectUri: row.redirect_uri,
    scopes: row.scopes.split(' '),
    roleClaim: row.role_claim,
    roleMapping: JSON.parse(row.role_mapping) as Record<string, string>,
    defaultRole: row.default_role,
    mfaAcrValues: JSON.parse(row.mfa_acr_values) as string[],
    ssoOnly: row.sso_only === 1,
    breakGlassUserId: row.break_glass_user_id,
    maxSessionMinutes: row.max_session_minutes,
    apiKeyReauthDays: row.api_key_reauth_days,
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  };
}

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
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly rp: RelyingParty,
    private readonly publicUrl: string,
  ) {}

  private secretContext(id: string): string {
    return `sso-config:${id}:client-secret`;
  }

  /** The callback address Bulwark serves for an organization. */
  defaultRedirectUri(slug: string): string {
    return `${this.publicUrl}/api/v1/auth/sso/${slug}/callback`;
  }

  async getConfig(actor: Actor): Promise<SsoConfigView> {
    requirePermission(actor, 'org:read');
    const row = await this.store.configOf(actor.organizationId);
    if (!row) throw new SsoNotConfiguredError();
    return toView(row);
  }

  /** Sets (or replaces) the organization's provider and policy: owners and admins with a fresh step-up. */
  async configure(actor: Actor, input: SsoConfigInput): Promise<SsoConfigView> {
    requirePermission(actor, 'org:manage');
    this.accountsService.requireStepUp(actor);
    const org = await this.accounts.organizationById(actor.organizationId);
    if (!org) throw new SsoNotConfiguredError();
    const existing = await this.store.configOf(org.id);
    const issuer = this.checkUrl(input.issuer, 'issuer');
    const redirectUri = this.checkUrl(input.redirectUri ?? this.defaultRedirectUri(org.slug), 'redirectUri');
    if (!input.clientId.trim()) throw new SsoConfigInvalidError('clientId must not be empty', 'clientId');
    if (!existing && !input.clientSecret) throw new SsoConfigInvalidError('clientSecret is required when configuring SSO', 'clientSecret');
    const scopes = input.scopes ?? ['openid', 'email', 'profile'];
    if (!scopes.includes('openid')) throw new SsoConfigInvalidError('scopes must include openid', 'scopes');
    if (scopes.some((s) => !/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/.test(s)))
      throw new SsoConfigInvalidError('a scope is not a valid token', 'scopes');
    const roleClaim = input.roleClaim ?? 'groups';
    if (!CLAIM_NAME.test(roleClaim)) throw new SsoConfigInvalidError('roleClaim must be a claim name such as groups', 'roleClaim');
    const roleMapping = input.roleMapping ?? {};
    for (const [value, role] of Object.entries(roleMapping)) {
      if (!isOperatorRole(role))
        throw new SsoConfigInvalidError(`roleMapping["${value}"] must be one of ${OPERATOR_ROLES.join(', ')}`, 'roleMapping');
    }
    const defaultRole = input.defaultRole ?? null;
    if (defaultRole !== null && !isOperatorRole(defaultRole))
      throw new SsoConfigInvalidError(`defaultRole must be one of ${OPERATOR_ROLES.join(', ')} or null`, 'defaultRole');
    const maxSessionMinutes = input.maxSessionMinutes ?? DEFAULT_MAX_SESSION_MINUTES;
    if (!Number.isInteger(maxSessionMinutes) || maxSessionMinutes < 5 || maxSessionMinutes > 24 * 60)
      throw new SsoConfigInvalidError('maxSessionMinutes must be an integer from 5 to 1440', 'maxSessionMinutes');
    const apiKeyReauthDays = input.apiKeyReauthDays ?? DEFAULT_API_KEY_REAUTH_DAYS;
    if (!Number.isInteger(apiKeyReauthDays) || apiKeyReauthDays < 1 || apiKeyReauthDays > 90)
      throw new SsoConfigInvalidError('apiKeyReauthDays must be an integer from 1 to 90', 'apiKeyReauthDays');
    const breakGlassUserId = input.breakGlassUserId ?? null;
    if (breakGlassUserId !== null) {
      const user = await this.accounts.userInOrganization(org.id, breakGlassUserId);
      if (!user || user.role !== 'owner' || user.status !== 'active' || !user.password_hash)
        throw new SsoConfigInvalidError('breakGlassUserId must name an active owner who has a password', 'breakGlassUserId');
    }
    const ssoOnly = input.ssoOnly ?? false;
    const now = this.clock.now();
    const id = existing?.id ?? newId();
    const row: SsoConfigRow = {
      id,
      organization_id: org.id,
      issuer,
      client_id: input.clientId.trim(),
      client_secret: input.clientSecret ? this.box.seal(input.clientSecret, this.secretContext(id)) : existing!.client_secret,
      redirect_uri: redirectUri,
      scopes: scopes.join(' '),
      role_claim: roleClaim,
      role_mapping: JSON.stringify(roleMapping),
      default_role: defaultRole,
      mfa_acr_values: JSON.stringify(input.mfaAcrValues ?? []),
      sso_only: ssoOnly ? 1 : 0,
      break_glass_user_id: breakGlassUserId,
      max_session_minutes: maxSessionMinutes,
      api_key_reauth_days: apiKeyReauthDays,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.upsertConfig(row, trx);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: auditActor(actor),
          action: 'sso.configured',
          target: { type: 'organization', id: org.id },
          sourceIp: actor.sourceIp,
          details: {
            issuer,
            clientId: row.client_id,
            secretChanged: input.clientSecret !== undefined,
            roleClaim,
            roleMapping,
            defaultRole,
            ssoOnly,
            breakGlassUserId,
            maxSessionMinutes,
            apiKeyReauthDays,
          },
        },
        trx,
      );
    });
    return toView(row);
  }

  async removeConfig(actor: Actor): Promise<void> {
    requirePermission(actor, 'org:manage');
    this.accountsService.requireStepUp(actor);
    await this.store.db.transaction().execute(async (trx) => {
      if (!(await this.store.deleteConfig(actor.organizationId, trx))) throw new SsoNotConfiguredError();
      await this.audit.record(
        {
          organizationId: actor.organizationId,
          actor: auditActor(actor),
          action: 'sso.removed',
          target: { type: 'organization', id: actor.organizationId },
          sourceIp: actor.sourceIp,
        },
        trx,
      );
    });
  }

  /**
   * Starts a sign-in: a state, nonce and PKCE verifier kept server-side for ten minutes, bound to
   * the browser by `browserToken` (the caller sets it as an HttpOnly cookie). Returns the provider URL.
   */
  async start(slug: string, transport: 'cookie' | 'bearer'): Promise<{ authorizationUrl: string; browserToken: string }> {
    const { config } = await this.configBySlug(slug);
    const request = await this.rp.authorizationRequest(this.settings(config), config.redirect_uri, config.scopes);
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
      const claims = await this.rp.exchange(this.settings(config), callbackUrl, {
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

  /** Every operator: their factors, last full sign-in and whether they meet the organization's MFA policy. */
  async report(actor: Actor): Promise<SecurityReport> {
    requirePermission(actor, 'users:read');
    const org = await this.accounts.organizationById(actor.organizationId);
    if (!org) throw new SsoNotConfiguredError();
    const config = await this.store.configOf(org.id);
    const facts = new Map((await this.store.signInFacts(org.id)).map((f) => [f.userId, f]));
    const operators: OperatorSecurityView[] = [];
    for (let after: string | undefined; ;) {
      const page = await this.accounts.listUsers(org.id, { kind: 'operator', limit: 200, ...(after ? { after } : {}) });
      for (const user of page) {
        const f = facts.get(user.id);
        const required = mfaRequiredFor(org, user);
        const totp = user.mfa_enabled_at !== null;
        const sso = f?.sso ?? false;
        operators.push({
          id: user.id,
          email: user.email,
          role: user.role,
          status: user.status,
          factors: { password: user.password_hash !== null, totp, sso },
          lastSignInAt: f?.lastSignInAt ? new Date(f.lastSignInAt).toISOString() : null,
          mfaRequired: required,
          // TOTP enrolled, or (for an operator without a password) the provider asserted MFA at the last sign-in.
          meetsMfaPolicy: !required || totp || (sso && user.password_hash === null && f!.ssoMfaAsserted),
          breakGlass: config?.break_glass_user_id === user.id,
        });
      }
      if (page.length < 200) break;
      after = page[page.length - 1]!.email;
    }
    return {
      organizationId: org.id,
      mfaRequiredRoles: JSON.parse(org.mfa_required_roles) as string[],
      ssoConfigured: config !== undefined,
      ssoOnly: config?.sso_only === 1,
      operators,
    };
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
            details: { email: address, role, via: 'sso', issuer: claims.iss, subject: claims.sub },
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

  private settings(config: SsoConfigRow): RelyingPartySettings {
    return {
      issuer: config.issuer,
      clientId: config.client_id,
      clientSecret: this.box.openText(config.client_secret, this.secretContext(config.id)),
    };
  }

  private checkUrl(value: string, field: string): string {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new SsoConfigInvalidError(`${field} must be an absolute URL`, field);
    }
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
      throw new SsoConfigInvalidError(`${field} must be an https URL`, field);
    if (url.hash || url.username || url.password) throw new SsoConfigInvalidError(`${field} must have no fragment or credentials`, field);
    if (value.length > 500) throw new ValidationError(`${field} is too long (500 characters at most)`, { field });
    // The issuer is kept exactly as given: the provider's `iss` must equal it character for character.
    return field === 'issuer' ? value : url.href;
  }
}
