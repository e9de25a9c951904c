/**
 * An organization's single sign-on configuration (issue 18): its OpenID provider, the client secret
 * sealed under the master key (context `sso-config:<id>:client-secret`, in the master-key rotation
 * walk), the claim → role mapping, which `acr` values count as MFA, SSO only with one break-glass
 * owner, and the bounds on SSO sessions and API keys. Set by owners and admins after a step-up (or
 * the platform admin at the console), audited.
 */
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ValidationError } from '../errors.js';
import type { SecretBox } from '../keys/master-key.js';
import { newId } from '../tokens.js';
import type { RelyingPartySettings } from './oidc.js';
import { auditActor, isOperatorRole, OPERATOR_ROLES, requirePermission, type Actor } from './roles.js';
import type { AccountsService } from './service.js';
import { SsoConfigInvalidError, SsoNotConfiguredError } from './sso-errors.js';
import type { SsoConfigRow, SsoStore } from './sso-store.js';
import type { AccountsStore } from './store.js';

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

export class SsoConfigService {
  constructor(
    private readonly store: SsoStore,
    private readonly accounts: AccountsStore,
    private readonly accountsService: AccountsService,
    private readonly audit: AuditService,
    private readonly box: SecretBox,
    private readonly clock: Clock,
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
      await this.audit.recordBy(actor, 'sso.removed', { type: 'organization', id: actor.organizationId }, undefined, trx);
    });
  }

  /** What the relying party needs to talk to the provider: the client secret opened here, used, never kept. */
  settings(config: SsoConfigRow): RelyingPartySettings {
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
