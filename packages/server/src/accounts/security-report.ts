/**
 * The operators' security report (issue 18): every operator of the organization with their factors
 * (password, TOTP, passkey, single sign-on), their last full sign-in, whether their role needs MFA under the
 * organization's policy and whether they meet it, and who the break-glass owner is.
 */
import { mfaRequiredFor } from './login.js';
import { requirePermission, type Actor } from './roles.js';
import { SsoNotConfiguredError } from './sso-errors.js';
import type { SsoStore } from './sso-store.js';
import type { PasskeyService } from './passkeys.js';
import type { AccountsStore } from './store.js';

export interface OperatorSecurityView {
  id: string;
  email: string;
  role: string | null;
  status: 'active' | 'disabled';
  factors: { password: boolean; totp: boolean; passkey: boolean; sso: boolean };
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

export class SecurityReportService {
  constructor(
    private readonly store: SsoStore,
    private readonly accounts: AccountsStore,
    private readonly passkeys: Pick<PasskeyService, 'holders'>,
  ) {}

  /** Every operator: their factors, last full sign-in and whether they meet the organization's MFA policy. */
  async report(actor: Actor): Promise<SecurityReport> {
    requirePermission(actor, 'users:read');
    const org = await this.accounts.organizationById(actor.organizationId);
    if (!org) throw new SsoNotConfiguredError();
    const config = await this.store.configOf(org.id);
    const facts = new Map((await this.store.signInFacts(org.id)).map((f) => [f.userId, f]));
    const passkeyHolders = await this.passkeys.holders(org.id);
    const operators: OperatorSecurityView[] = [];
    for (let after: string | undefined; ;) {
      const page = await this.accounts.listUsers(org.id, { kind: 'operator', limit: 200, ...(after ? { after } : {}) });
      for (const user of page) {
        const f = facts.get(user.id);
        const required = mfaRequiredFor(org, user);
        const totp = user.mfa_enabled_at !== null;
        const sso = f?.sso ?? false;
        const passkey = passkeyHolders.has(user.id);
        operators.push({
          id: user.id,
          email: user.email,
          role: user.role,
          status: user.status,
          factors: { password: user.password_hash !== null, totp, passkey, sso },
          lastSignInAt: f?.lastSignInAt ? new Date(f.lastSignInAt).toISOString() : null,
          mfaRequired: required,
          // TOTP enrolled or a passkey held, or (for an operator without a password) the provider asserted MFA at the last sign-in.
          meetsMfaPolicy: !required || totp || passkey || (sso && user.password_hash === null && f!.ssoMfaAsserted),
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
}
