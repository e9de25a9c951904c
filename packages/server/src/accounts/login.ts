/**
 * Signing in: password check with per-account lockout, no user enumeration (every failure gets
 * the same answer after the same argon2id work), the MFA step, and the next-step scopes that
 * force a first password change or MFA enrolment before anything else. Every attempt is audited.
 */
import type { AuditEvent, AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { MINUTE } from '../clock.js';
import { ForbiddenError } from '../errors.js';
import type { Config } from '../ops/config.js';
import type { SessionScope } from './sessions.js';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import {
  InvalidCredentialsError,
  MfaInvalidError,
  PasskeyChallengeError,
  PasskeyInvalidError,
  PasskeyRefusal,
  PasskeyRequiredError,
} from './errors.js';
import type { Mailer } from './mailer.js';
import type { MfaService } from './mfa.js';
import type { Actor } from './roles.js';
import { passkeyRequiredFor, type AssertionBinding, type PasskeyService, type RelyingParty, type VerifiedAssertion } from './passkeys.js';
import { burnVerification, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import type { IssuedSession, SessionContext, SessionService } from './sessions.js';
import type { AccountsStore, OrganizationRow, SessionRow, UserRow } from './store.js';
import { normalizeEmail } from './store.js';
import type { Executor } from '../storage/executor.js';

export type LoginStatus = 'ok' | 'mfa_required' | 'password_change_required' | 'mfa_enrollment_required' | 'passkey_enrollment_required';

/** A second factor the MFA step accepts. */
export type MfaFactor = 'totp' | 'passkey';

export interface LoginOutcome {
  status: LoginStatus;
  issued: IssuedSession;
  user: UserRow;
  /** At the MFA step: the factors that complete it. */
  factors?: MfaFactor[];
}

const STATUS_OF_SCOPE: Record<SessionScope, LoginStatus> = {
  full: 'ok',
  mfa_pending: 'mfa_required',
  password_change: 'password_change_required',
  mfa_enrollment: 'mfa_enrollment_required',
  passkey_enrollment: 'passkey_enrollment_required',
};

export function statusOfScope(scope: SessionScope): LoginStatus {
  return STATUS_OF_SCOPE[scope];
}

/**
 * Decides whether a password sign-in may go on once the password is proven (single sign-on's
 * "SSO only" rule, accounts/sso.ts): throws to refuse, or says the sign-in is a break-glass one.
 */
export type PasswordGate = (org: OrganizationRow, user: UserRow) => Promise<'allowed' | 'break_glass'>;

export function mfaRequiredFor(org: OrganizationRow, user: UserRow): boolean {
  return user.kind === 'operator' && user.role !== null && (JSON.parse(org.mfa_required_roles) as string[]).includes(user.role);
}

/**
 * The step a signed-in user must take next, given whether this sign-in has proven a second factor
 * the policy accepts and how many passkeys the user holds (a passkey is a second factor too).
 */
export function nextScope(org: OrganizationRow, user: UserRow, mfaProven: boolean, passkeys = 0): SessionScope {
  const hasSecondFactor = user.mfa_enabled_at !== null || passkeys > 0;
  if (hasSecondFactor && !mfaProven) return 'mfa_pending';
  if (user.must_change_password) return 'password_change';
  if (passkeys === 0 && passkeyRequiredFor(org, user)) return 'passkey_enrollment';
  if (!hasSecondFactor && mfaRequiredFor(org, user)) return 'mfa_enrollment';
  return 'full';
}

/** The factors that complete the MFA step: a role that must use a passkey is offered only that. */
function factorsOf(org: OrganizationRow, user: UserRow, passkeys: number): MfaFactor[] {
  const passkeyOnly = passkeys > 0 && passkeyRequiredFor(org, user);
  return [...(user.mfa_enabled_at !== null && !passkeyOnly ? ['totp' as const] : []), ...(passkeys > 0 ? ['passkey' as const] : [])];
}

export interface PasskeySignInInput extends SessionContext {
  response: AuthenticationResponseJSON;
  rp: RelyingParty;
}

export interface LoginInput extends SessionContext {
  organization: string;
  email: string;
  password: string;
}

export class LoginService {
  constructor(
    private readonly store: AccountsStore,
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly passkeys: PasskeyService,
    private readonly audit: AuditService,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly config: Config['auth'],
  ) {}

  private passwordGate: PasswordGate = async () => 'allowed';

  usePasswordGate(gate: PasswordGate): void {
    this.passwordGate = gate;
  }

  async login(input: LoginInput): Promise<LoginOutcome> {
    const org = await this.store.organizationBySlug(input.organization);
    const user = org ? await this.store.userByEmail(org.id, input.email) : undefined;
    const now = this.clock.now();
    if (!org || !user || !user.password_hash || user.status !== 'active') {
      await burnVerification(input.password);
      await this.audit.record({
        organizationId: org?.id ?? null,
        actor: { type: 'anonymous', id: null },
        action: 'auth.login',
        outcome: 'failure',
        sourceIp: input.sourceIp,
        details: { reason: user ? 'inactive' : 'unknown_account' },
        personal: { subject: user?.id ?? null, fields: { email: normalizeEmail(input.email) } },
      });
      throw new InvalidCredentialsError();
    }
    if (user.locked_until !== null && user.locked_until > now) {
      await burnVerification(input.password);
      await this.audit.record({
        organizationId: org.id,
        actor: { type: 'anonymous', id: null },
        action: 'auth.login',
        outcome: 'denied',
        target: { type: 'user', id: user.id },
        sourceIp: input.sourceIp,
        details: { reason: 'locked' },
      });
      throw new InvalidCredentialsError();
    }
    if (!(await verifyPassword(user.password_hash, input.password))) {
      await this.recordFailure(user, input.sourceIp, 'bad_password');
      throw new InvalidCredentialsError();
    }
    let gate: 'allowed' | 'break_glass';
    try {
      gate = await this.passwordGate(org, user);
    } catch (error) {
      await this.audit.record({
        organizationId: org.id,
        actor: { type: 'anonymous', id: null },
        action: 'auth.login',
        outcome: 'denied',
        target: { type: 'user', id: user.id },
        sourceIp: input.sourceIp,
        details: { reason: 'sso_only' },
      });
      throw error;
    }
    if (user.kind === 'consumer' && user.email_verified_at === null) {
      throw new ForbiddenError(
        'Confirm your email address first: follow the link we sent you, or ask for a new one',
        'auth.email_not_verified',
      );
    }
    const rehash = needsRehash(user.password_hash) ? await hashPassword(input.password) : null;
    const passkeys = await this.passkeys.count(user.id);
    return this.store.db.transaction().execute(async (trx) => {
      const scope = nextScope(org, user, false, passkeys);
      // The password alone clears the failure count only when no second factor is due: else
      // signing in again between wrong codes would reset it, and the codes could be guessed forever.
      const cleared = scope === 'mfa_pending' ? {} : { failed_logins: 0 };
      await this.store.updateUser(user.id, { ...cleared, locked_until: null, ...(rehash ? { password_hash: rehash } : {}) }, trx);
      const issued = await this.sessions.issue(user, scope, input, trx);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'user', id: user.id },
          action: 'auth.login',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
          details: { next: scope, transport: input.transport, ...(rehash ? { rehashed: true } : {}) },
        },
        trx,
      );
      if (gate === 'break_glass') {
        // Passwords are off for this organization; its one break-glass owner's every use is on record.
        await this.audit.record(
          {
            organizationId: org.id,
            actor: { type: 'user', id: user.id },
            action: 'auth.break_glass',
            target: { type: 'user', id: user.id },
            sourceIp: input.sourceIp,
            details: { next: scope },
          },
          trx,
        );
      }
      return {
        status: STATUS_OF_SCOPE[scope],
        issued,
        user,
        ...(scope === 'mfa_pending' ? { factors: factorsOf(org, user, passkeys) } : {}),
      };
    });
  }

  /** Second step of a sign-in: the pending session plus a TOTP or recovery code gives a new session. */
  async completeMfa(pending: SessionRow, code: string, context: SessionContext): Promise<LoginOutcome> {
    const user = await this.store.userById(pending.user_id);
    const org = user ? await this.store.organizationById(user.organization_id) : undefined;
    if (!user || !org || user.status !== 'active') throw new InvalidCredentialsError();
    if (user.locked_until !== null && user.locked_until > this.clock.now()) throw new InvalidCredentialsError();
    const passkeys = await this.passkeys.count(user.id);
    // A role that must use a passkey is not let in by a code, however right (nor is a code counted or spent).
    if (passkeys > 0 && passkeyRequiredFor(org, user)) {
      await this.audit.record({
        organizationId: org.id,
        actor: { type: 'user', id: user.id },
        action: 'auth.mfa_verified',
        outcome: 'denied',
        target: { type: 'user', id: user.id },
        sourceIp: context.sourceIp,
        details: { reason: 'passkey_required' },
      });
      throw new PasskeyRequiredError();
    }
    const outcome = await this.store.db.transaction().execute(async (trx) => {
      if (!(await this.mfa.verifyFactor(user, code, trx))) return null;
      await this.sessions.revoke(pending.id, trx);
      await this.store.updateUser(user.id, { failed_logins: 0 }, trx);
      const scope = nextScope(org, user, true, passkeys);
      const issued = await this.sessions.issue(user, scope, context, trx, true);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'user', id: user.id },
          action: 'auth.mfa_verified',
          target: { type: 'user', id: user.id },
          sourceIp: context.sourceIp,
          details: { next: scope },
        },
        trx,
      );
      return { status: STATUS_OF_SCOPE[scope], issued, user };
    });
    if (!outcome) {
      await this.recordFailure(user, context.sourceIp, 'bad_mfa_code');
      throw new MfaInvalidError();
    }
    return outcome;
  }

  /**
   * Replaces a restricted session by the one the user is now entitled to, after they changed
   * their password or enrolled MFA. A new token every time: no fixation across privilege changes.
   */
  async advance(current: SessionRow, context: SessionContext, db: Executor): Promise<LoginOutcome> {
    const user = await this.store.userById(current.user_id, db);
    const org = user ? await this.store.organizationById(user.organization_id, db) : undefined;
    if (!user || !org) throw new InvalidCredentialsError();
    await this.sessions.revoke(current.id, db);
    // Every way into a restricted session proved the factors the policy asks for.
    const scope = nextScope(org, user, true, await this.passkeys.count(user.id, db));
    const issued = await this.sessions.issue(user, scope, { ...context, transport: current.transport }, db, true);
    return { status: STATUS_OF_SCOPE[scope], issued, user };
  }

  /**
   * Passwordless sign-in: a discoverable passkey with user verification proves both factors. The
   * same lockout, SSO gate, verified-address rule and session issuance as the password; every
   * refusal is audited with its reason and answered with one error.
   */
  async signInWithPasskey(input: PasskeySignInInput & { ceremony: string | undefined }): Promise<LoginOutcome> {
    const { user, credential } = await this.assert(input.response, { purpose: 'authentication', ceremony: input.ceremony }, input, {
      action: 'auth.passkey_login',
      actor: { type: 'anonymous', id: null },
    });
    const org = await this.store.organizationById(user.organization_id);
    if (!org) throw new PasskeyInvalidError();
    try {
      await this.passwordGate(org, user);
    } catch (error) {
      await this.audit.record({
        organizationId: org.id,
        actor: { type: 'anonymous', id: null },
        action: 'auth.passkey_login',
        outcome: 'denied',
        target: { type: 'user', id: user.id },
        sourceIp: input.sourceIp,
        details: { reason: 'sso_only', credential: credential.id },
      });
      throw error;
    }
    if (user.kind === 'consumer' && user.email_verified_at === null) {
      throw new ForbiddenError(
        'Confirm your email address first: follow the link we sent you, or ask for a new one',
        'auth.email_not_verified',
      );
    }
    return this.store.db.transaction().execute(async (trx) => {
      const scope = nextScope(org, user, true, await this.passkeys.count(user.id, trx));
      await this.store.updateUser(user.id, { failed_logins: 0, locked_until: null }, trx);
      const issued = await this.sessions.issue(user, scope, input, trx, true);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'user', id: user.id },
          action: 'auth.passkey_login',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
          details: { next: scope, transport: input.transport, credential: credential.id },
        },
        trx,
      );
      return { status: STATUS_OF_SCOPE[scope], issued, user };
    });
  }

  /** Second step of a password sign-in with a passkey instead of a code. */
  async completeMfaWithPasskey(pending: SessionRow, input: PasskeySignInInput): Promise<LoginOutcome> {
    const { user, credential } = await this.assert(
      input.response,
      { purpose: 'mfa', sessionId: pending.id, userId: pending.user_id },
      input,
      { action: 'auth.login', actor: { type: 'anonymous', id: null } },
    );
    const org = await this.store.organizationById(user.organization_id);
    if (!org) throw new PasskeyInvalidError();
    return this.store.db.transaction().execute(async (trx) => {
      await this.sessions.revoke(pending.id, trx);
      await this.store.updateUser(user.id, { failed_logins: 0 }, trx);
      const scope = nextScope(org, user, true, await this.passkeys.count(user.id, trx));
      const issued = await this.sessions.issue(user, scope, input, trx, true);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'user', id: user.id },
          action: 'auth.mfa_verified',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
          details: { next: scope, factor: 'passkey', credential: credential.id },
        },
        trx,
      );
      return { status: STATUS_OF_SCOPE[scope], issued, user };
    });
  }

  /** Step-up with a passkey: the session may do sensitive actions for the next minutes. */
  async stepUpWithPasskey(session: SessionRow, input: PasskeySignInInput): Promise<void> {
    const { user, credential } = await this.assert(
      input.response,
      { purpose: 'step_up', sessionId: session.id, userId: session.user_id },
      input,
      { action: 'auth.step_up', actor: { type: 'user', id: session.user_id } },
    );
    await this.store.db.transaction().execute(async (trx) => {
      await this.audit.record(
        {
          organizationId: user.organization_id,
          actor: { type: 'user', id: user.id },
          action: 'auth.step_up',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
          details: { factor: 'passkey', credential: credential.id },
        },
        trx,
      );
      await this.sessions.markStepUp(session.id, trx);
    });
  }

  /**
   * Runs an assertion check under the sign-in rules: a locked or inactive account is refused
   * before anything is verified; a refusal is audited with its reason and, once the credential
   * names an account, counted toward that account's lockout.
   */
  private async assert(
    response: AuthenticationResponseJSON,
    binding: AssertionBinding,
    input: PasskeySignInInput,
    as: Pick<AuditEvent, 'action' | 'actor'>,
  ): Promise<VerifiedAssertion> {
    let verified: VerifiedAssertion;
    try {
      if (binding.purpose !== 'authentication') await this.requireUsable(binding.userId, input.sourceIp, as);
      verified = await this.passkeys.verifyAssertion(response, binding, input.rp);
    } catch (error) {
      if (!(error instanceof PasskeyRefusal)) throw error;
      const user = error.userId ? await this.store.userById(error.userId) : undefined;
      if (user) {
        await this.recordFailure(user, input.sourceIp, `passkey_${error.reason}`, as, error.details);
      } else {
        await this.audit.record({
          organizationId: null,
          ...as,
          outcome: 'failure',
          sourceIp: input.sourceIp,
          details: { reason: `passkey_${error.reason}`, ...error.details },
        });
      }
      throw error.reason === 'challenge_invalid' ? new PasskeyChallengeError() : new PasskeyInvalidError();
    }
    if (binding.purpose === 'authentication') await this.requireUsable(verified.user.id, input.sourceIp, as);
    return verified;
  }

  /** Refuses (and audits) a sign-in to a disabled or locked account, whatever it proves. */
  private async requireUsable(userId: string, sourceIp: string, as: Pick<AuditEvent, 'action' | 'actor'>): Promise<void> {
    const user = await this.store.userById(userId);
    const reason =
      !user || user.status !== 'active' ? 'inactive' : user.locked_until !== null && user.locked_until > this.clock.now() ? 'locked' : null;
    if (reason === null) return;
    await this.audit.record({
      organizationId: user?.organization_id ?? null,
      ...as,
      outcome: 'denied',
      target: { type: 'user', id: userId },
      sourceIp,
      details: { reason },
    });
    throw new PasskeyInvalidError();
  }

  /** Replaces an enrolment session once the user registered the factor it waited for (a passkey). */
  advanceAfterEnrolment(current: SessionRow, context: SessionContext): Promise<LoginOutcome> {
    return this.store.db.transaction().execute((trx) => this.advance(current, context, trx));
  }

  /**
   * Confirms the TOTP enrolment with a first code and marks the session stepped up; an enrolment
   * session is replaced by the one the user is now entitled to. One transaction.
   */
  confirmMfaEnrollment(
    actor: Actor,
    current: SessionRow,
    code: string,
    context: SessionContext,
  ): Promise<{ recoveryCodes: string[]; advanced: LoginOutcome | null }> {
    return this.store.db.transaction().execute(async (trx) => {
      const recoveryCodes = await this.mfa.confirmEnrollment(actor, code, trx);
      await this.sessions.markStepUp(current.id, trx);
      return { recoveryCodes, advanced: current.scope === 'mfa_enrollment' ? await this.advance(current, context, trx) : null };
    });
  }

  async logout(session: SessionRow, sourceIp: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      await this.sessions.revoke(session.id, trx);
      // Signing out ends the companion apps' grants of this user too (issue 14).
      await this.sessions.signedOut(session.user_id, 'logout', trx);
      await this.audit.record(
        {
          organizationId: session.organization_id,
          actor: { type: 'user', id: session.user_id },
          action: 'auth.logout',
          target: { type: 'session', id: session.id },
          sourceIp,
        },
        trx,
      );
    });
  }

  /**
   * Runs a signed-in user's re-proof of a factor (step-up, password change) under the sign-in
   * lockout: refused while the account is locked, and a wrong password or code counts as a failed
   * sign-in, so whoever holds a stolen session cannot guess the factors it lacks. The failure is
   * recorded after `attempt` has returned or rolled back, never inside its transaction.
   */
  async reprove<T>(userId: string, sourceIp: string, failure: { action: string; reason: string }, attempt: () => Promise<T>): Promise<T> {
    const user = await this.store.userById(userId);
    if (!user) throw new InvalidCredentialsError();
    if (user.locked_until !== null && user.locked_until > this.clock.now()) throw new InvalidCredentialsError();
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof InvalidCredentialsError || error instanceof MfaInvalidError) {
        await this.recordFailure(user, sourceIp, failure.reason, { action: failure.action, actor: { type: 'user', id: user.id } });
      }
      throw error;
    }
  }

  /** Counts a failed factor atomically (parallel guesses each count) and locks at the threshold. */
  private async recordFailure(
    user: UserRow,
    sourceIp: string,
    reason: string,
    as: Pick<AuditEvent, 'action' | 'actor'> = { action: 'auth.login', actor: { type: 'anonymous', id: null } },
    context: Record<string, unknown> = {},
  ): Promise<void> {
    const db = this.store.db;
    const failures = await this.store.countFailedLogin(user.id, db);
    const locks = failures >= this.config.lockoutThreshold;
    const lockedUntil = this.clock.now() + this.config.lockoutMinutes * MINUTE;
    if (locks) await this.store.updateUser(user.id, { failed_logins: 0, locked_until: lockedUntil }, db);
    await this.audit.record(
      {
        organizationId: user.organization_id,
        ...as,
        outcome: 'failure',
        target: { type: 'user', id: user.id },
        sourceIp,
        details: { reason, failures, ...context },
      },
      db,
    );
    if (locks) {
      await this.audit.record(
        {
          organizationId: user.organization_id,
          actor: { type: 'system', id: null },
          action: 'auth.lockout',
          target: { type: 'user', id: user.id },
          sourceIp,
          details: { until: new Date(lockedUntil).toISOString(), failures },
        },
        db,
      );
      await this.mailer.send({
        to: user.email,
        kind: 'account_locked',
        subject: 'Your Bulwark account was locked',
        text: `After ${failures} failed sign-in attempts (the last from ${sourceIp}), your account is locked until ${new Date(lockedUntil).toISOString()}.\nIf this was not you, change your password once the lock expires and turn on two-factor authentication.`,
      });
    }
  }
}
