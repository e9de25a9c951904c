/**
 * Organizations and their operators: create, list, read, change role or status, unlock, reset
 * MFA; and the signed-in user's own password change and step-up. Every write is authorized
 * here (not only at the route) and audited in the same transaction.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, type OrganizationView, type UserView } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { newId } from '../tokens.js';
import type { ApiKeyStore } from './api-key-store.js';
import { InvalidCredentialsError, MfaInvalidError, StepUpRequiredError } from './errors.js';
import type { MfaService } from './mfa.js';
import type { OneTimeTokens } from './one-time-tokens.js';
import type { PasskeyService } from './passkeys.js';
import { checkPasswordPolicy, hashPassword, verifyPassword } from './passwords.js';
import { auditActor, grantableRoles, isOperatorRole, requireOperator, requirePermission, type Actor, type OperatorRole } from './roles.js';
import type { SessionService } from './sessions.js';
import type { AccountsStore, OrganizationRow, UserRow } from './store.js';
import { newUserRow, normalizeEmail } from './store.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';
import type { Executor } from '../storage/executor.js';

/** A user and an organization as the API shows them: wire shapes the console reads too (@bulwark/protocol). */
export type { OrganizationView, UserView };

export function toUserView(row: UserRow, now: number): UserView {
  return {
    id: row.id,
    organizationId: row.organization_id,
    kind: row.kind,
    email: row.email,
    emailVerified: row.email_verified_at !== null,
    name: row.name,
    role: row.role,
    status: row.status,
    mfaEnabled: row.mfa_enabled_at !== null,
    locked: row.locked_until !== null && row.locked_until > now,
    mustChangePassword: row.must_change_password === 1,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

export function toOrganizationView(row: OrganizationRow): OrganizationView {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    mfaRequiredRoles: JSON.parse(row.mfa_required_roles) as string[],
    passkeyRequiredRoles: JSON.parse(row.passkey_required_roles) as string[],
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** A random password handed out once (first owner, admin-created users); it must be changed at first sign-in. */
export function oneTimePassword(): string {
  return randomBytes(18).toString('base64url');
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function validateEmail(email: string): string {
  const normalized = normalizeEmail(email);
  if (normalized.length > 254 || !EMAIL.test(normalized))
    throw new ValidationError('email must be an address such as name@example.com', { field: 'email' });
  return normalized;
}

export interface CreateOperatorInput {
  email: string;
  name: string;
  role: OperatorRole;
  /** Omitted: a one-time password is generated, returned once, and must be changed at first sign-in. */
  password?: string;
}

export class AccountsService {
  constructor(
    private readonly store: AccountsStore,
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly tokens: OneTimeTokens,
    private readonly apiKeys: ApiKeyStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly passkeysOfUser: Pick<PasskeyService, 'clear'>,
  ) {}

  /** Ends what a sign-in handed out beside sessions (companion apps' grants), as sign-out does. */
  endSignIns(userId: string, reason: string, db: Executor): Promise<void> {
    return this.sessions.signedOut(userId, reason, db);
  }

  async createOrganization(
    input: { slug: string; name: string },
    actor: { type: 'cli' | 'system'; id: string },
    db: Executor = this.store.db,
  ): Promise<OrganizationView> {
    const slug = input.slug.trim().toLowerCase();
    if (!SLUG.test(slug))
      throw new ValidationError('organization slug must be 1-40 lower-case letters, digits or inner hyphens', { field: 'slug' });
    if (await this.store.organizationBySlug(slug, db))
      throw new ConflictError(`An organization with slug "${slug}" already exists`, { slug }, 'org.exists');
    const row: OrganizationRow = {
      id: newId(),
      slug,
      name: input.name.trim() || slug,
      mfa_required_roles: JSON.stringify(['owner', 'admin']),
      passkey_required_roles: '[]',
      created_at: this.clock.now(),
    };
    await this.store.insertOrganization(row, db);
    await this.audit.record(
      { organizationId: row.id, actor, action: 'org.created', target: { type: 'organization', id: row.id }, details: { slug } },
      db,
    );
    return toOrganizationView(row);
  }

  async organization(actor: Actor): Promise<OrganizationView> {
    requirePermission(actor, 'org:read');
    const row = await this.store.organizationById(actor.organizationId);
    if (!row) throw new NotFoundError('Organization');
    return toOrganizationView(row);
  }

  async organizationBySlug(slug: string): Promise<OrganizationView> {
    const row = await this.store.organizationBySlug(slug);
    if (!row) throw new NotFoundError(`Organization "${slug}"`);
    return toOrganizationView(row);
  }

  async createOperator(
    actor: Actor,
    input: CreateOperatorInput,
    db?: Executor,
  ): Promise<{ user: UserView; oneTimePassword: string | null }> {
    requirePermission(actor, 'users:manage');
    this.requireGrantable(actor, input.role);
    const email = validateEmail(input.email);
    const name = input.name.trim();
    if (!name) throw new ValidationError('name must not be empty', { field: 'name' });
    const generated = input.password === undefined ? oneTimePassword() : null;
    const password = input.password ?? generated!;
    if (input.password !== undefined) await checkPasswordPolicy(password, 'operator', [email, name]);
    const passwordHash = await hashPassword(password);
    const write = async (trx: Executor): Promise<UserView> => {
      if (await this.store.userByEmail(actor.organizationId, email, trx))
        throw new ConflictError('A user with this email already exists in the organization', { field: 'email' }, 'user.exists');
      const now = this.clock.now();
      const row = newUserRow({
        organizationId: actor.organizationId,
        kind: 'operator',
        email,
        name,
        role: input.role,
        passwordHash,
        emailVerifiedAt: null,
        mustChangePassword: generated !== null,
        now,
      });
      await this.store.insertUser(row, trx);
      await this.audit.recordBy(actor, 'user.created', { type: 'user', id: row.id }, { role: input.role }, trx, {
        personal: { subject: row.id, fields: { email } },
      });
      return toUserView(row, now);
    };
    const user = db ? await write(db) : await this.store.db.transaction().execute(write);
    return { user, oneTimePassword: generated };
  }

  async listUsers(
    actor: Actor,
    filter: { kind?: 'operator' | 'consumer'; role?: string; email?: string; after?: string; limit?: number },
  ): Promise<{ users: UserView[]; nextCursor: string | null }> {
    requirePermission(actor, 'users:read');
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
    const after = filter.after === undefined ? undefined : decodeCursor(filter.after, (v): v is string => typeof v === 'string', 'after');
    const rows = await this.store.listUsers(actor.organizationId, { ...filter, after, limit: limit + 1 });
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor(last.email));
    const now = this.clock.now();
    return { users: page.map((r) => toUserView(r, now)), nextCursor };
  }

  /**
   * A user's address and kind for another domain that shows who holds what (binding: a device's
   * members, the invitee who accepts); null for another organization's or a deleted user.
   */
  async contact(organizationId: string, userId: string): Promise<{ id: string; email: string; kind: 'operator' | 'consumer' } | null> {
    const row = await this.store.userInOrganization(organizationId, userId);
    return row ? { id: row.id, email: row.email, kind: row.kind } : null;
  }

  async getUser(actor: Actor, userId: string): Promise<UserView> {
    if (userId !== actor.userId) requirePermission(actor, 'users:read');
    return toUserView(await this.userOf(actor, userId), this.clock.now());
  }

  async updateUser(
    actor: Actor,
    userId: string,
    changes: { role?: OperatorRole; status?: 'active' | 'disabled'; name?: string },
  ): Promise<UserView> {
    requirePermission(actor, 'users:manage');
    const target = await this.userOf(actor, userId);
    if (target.kind === 'operator' && target.role) this.requireGrantable(actor, target.role as OperatorRole);
    if (changes.role !== undefined) {
      if (target.kind !== 'operator') throw new ValidationError('Consumers have no role', { field: 'role' });
      this.requireGrantable(actor, changes.role);
    }
    if (userId === actor.userId && (changes.role !== undefined || changes.status === 'disabled')) {
      throw new ForbiddenError('You cannot change your own role or disable yourself; ask another owner or admin');
    }
    if (changes.role !== undefined) this.requireStepUp(actor);
    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      const endsOwnership =
        target.role === 'owner' && ((changes.role !== undefined && changes.role !== 'owner') || changes.status === 'disabled');
      if (endsOwnership) await this.requireAnotherOwner(target, trx);
      await this.store.updateUser(userId, { ...changes, updated_at: now }, trx);
      const ended: { sessionsRevoked?: number; apiKeysRevoked?: number } = {};
      if (changes.status === 'disabled' || changes.role !== undefined) ended.sessionsRevoked = await this.sessions.revokeAll(userId, trx);
      // Disabling is what a departure or a suspected compromise calls for: the keys end for good, so
      // enabling the account again later gives back the password, never the old keys.
      if (changes.status === 'disabled') ended.apiKeysRevoked = await this.apiKeys.revokeAllOfUser(userId, now, trx);
      await this.audit.recordBy(
        actor,
        changes.role !== undefined ? 'user.role_changed' : 'user.updated',
        { type: 'user', id: userId },
        { ...changes, previousRole: target.role, ...ended },
        trx,
      );
      return toUserView((await this.store.userById(userId, trx))!, now);
    });
  }

  /**
   * Disables an operator the identity provider no longer grants a role (single sign-on): their
   * sessions and API keys end with it, as disabling by an owner does. Runs in the caller's transaction.
   */
  async disableForSso(user: UserRow, reason: string, db: Executor): Promise<void> {
    const now = this.clock.now();
    await this.store.updateUser(user.id, { status: 'disabled', updated_at: now }, db);
    const sessionsRevoked = await this.sessions.revokeAll(user.id, db);
    const apiKeysRevoked = await this.apiKeys.revokeAllOfUser(user.id, now, db);
    await this.audit.record(
      {
        organizationId: user.organization_id,
        actor: { type: 'system', id: null },
        action: 'user.updated',
        target: { type: 'user', id: user.id },
        details: { status: 'disabled', via: 'sso', reason, sessionsRevoked, apiKeysRevoked },
      },
      db,
    );
  }

  /** Names the roles that must use MFA in the organization (owners and admins by default); needs a fresh step-up. */
  setMfaPolicy(actor: Actor, roles: string[]): Promise<OrganizationView> {
    return this.setRolePolicy(actor, roles, 'mfa_required_roles', 'mfaRequiredRoles', 'org.mfa_policy_changed');
  }

  /**
   * Names the roles that must sign in with a passkey (none by default): their members without one
   * are sent to register one at their next sign-in, and a TOTP code no longer completes it. Needs a fresh step-up.
   */
  setPasskeyPolicy(actor: Actor, roles: string[]): Promise<OrganizationView> {
    return this.setRolePolicy(actor, roles, 'passkey_required_roles', 'passkeyRequiredRoles', 'org.passkey_policy_changed');
  }

  private async setRolePolicy(
    actor: Actor,
    roles: string[],
    column: 'mfa_required_roles' | 'passkey_required_roles',
    field: string,
    action: string,
  ): Promise<OrganizationView> {
    requirePermission(actor, 'org:manage');
    this.requireStepUp(actor);
    for (const role of roles) {
      if (!isOperatorRole(role))
        throw new ValidationError(`${field} must name roles among owner, admin, operator, release_engineer, auditor`, { field });
    }
    const unique = [...new Set(roles)];
    return this.store.db.transaction().execute(async (trx) => {
      const before = await this.store.organizationById(actor.organizationId, trx);
      if (!before) throw new NotFoundError('Organization');
      await this.store.updateOrganization(actor.organizationId, { [column]: JSON.stringify(unique) }, trx);
      await this.audit.recordBy(
        actor,
        action,
        { type: 'organization', id: actor.organizationId },
        { [field]: unique, previous: JSON.parse(before[column]) as string[] },
        trx,
      );
      return toOrganizationView({ ...before, [column]: JSON.stringify(unique) });
    });
  }

  async unlock(actor: Actor, userId: string): Promise<UserView> {
    requirePermission(actor, 'users:manage');
    await this.userOf(actor, userId);
    return this.store.db.transaction().execute(async (trx) => {
      await this.store.updateUser(userId, { locked_until: null, failed_logins: 0, updated_at: this.clock.now() }, trx);
      await this.audit.recordBy(actor, 'user.unlocked', { type: 'user', id: userId }, undefined, trx);
      return toUserView((await this.store.userById(userId, trx))!, this.clock.now());
    });
  }

  /** Removes a user's second factors (a lost phone or security key: TOTP and passkeys) and ends their sessions; they enrol again at next sign-in. */
  async resetMfa(actor: Actor, userId: string): Promise<UserView> {
    requirePermission(actor, 'users:manage');
    this.requireStepUp(actor);
    const target = await this.userOf(actor, userId);
    if (target.role) this.requireGrantable(actor, target.role as OperatorRole);
    return this.store.db.transaction().execute(async (trx) => {
      await this.mfa.clear(userId, trx);
      const passkeysRemoved = await this.passkeysOfUser.clear(userId, trx);
      await this.sessions.revokeAll(userId, trx);
      await this.audit.recordBy(actor, 'mfa.reset', { type: 'user', id: userId }, { passkeysRemoved }, trx);
      return toUserView((await this.store.userById(userId, trx))!, this.clock.now());
    });
  }

  /**
   * Changes the actor's own password (the current one is required), ends every other session
   * and voids outstanding reset tokens. Returns nothing: the caller advances its own session.
   */
  async changePassword(actor: Actor, currentPassword: string, newPassword: string, db: Executor): Promise<void> {
    const user = await this.store.userById(actor.userId, db);
    if (!user?.password_hash) throw new InvalidCredentialsError();
    // The failure is counted and audited by the caller (LoginService.reprove), outside this transaction.
    if (!(await verifyPassword(user.password_hash, currentPassword))) throw new InvalidCredentialsError();
    if (currentPassword === newPassword)
      throw new ValidationError('The new password must differ from the current one', { field: 'newPassword' }, 'auth.password_rejected');
    await checkPasswordPolicy(newPassword, user.kind, [user.email, user.name]);
    const now = this.clock.now();
    await this.store.updateUser(
      user.id,
      { password_hash: await hashPassword(newPassword), password_changed_at: now, must_change_password: 0, updated_at: now },
      db,
    );
    await this.sessions.revokeAll(user.id, db, actor.sessionId ?? undefined);
    await this.tokens.revokeAll(user.id, 'password_reset', db);
    await this.audit.record(
      {
        organizationId: user.organization_id,
        actor: auditActor(actor),
        action: 'user.password_changed',
        target: { type: 'user', id: user.id },
        sourceIp: actor.sourceIp,
      },
      db,
    );
  }

  /** Changes the actor's own password (changePassword) and runs `then` in the same transaction (the caller advances its session). */
  changeOwnPassword<T>(actor: Actor, currentPassword: string, newPassword: string, then: (trx: Executor) => Promise<T>): Promise<T> {
    return this.store.db.transaction().execute(async (trx) => {
      await this.changePassword(actor, currentPassword, newPassword, trx);
      return then(trx);
    });
  }

  /** Revokes one of the actor's own sessions, audited; another user's or an unknown session is a 404. */
  async revokeOwnSession(actor: Actor, sessionId: string): Promise<void> {
    const mine = await this.sessions.list(actor.userId, null);
    if (!mine.some((s) => s.id === sessionId)) throw new NotFoundError('Session');
    await this.store.db.transaction().execute(async (trx) => {
      await this.sessions.revoke(sessionId, trx);
      await this.audit.recordBy(actor, 'session.revoked', { type: 'session', id: sessionId }, undefined, trx);
    });
  }

  /** Replaces the actor's recovery codes (the caller checked the step-up). */
  regenerateRecoveryCodes(actor: Actor): Promise<string[]> {
    return this.store.db.transaction().execute((trx) => this.mfa.regenerateRecoveryCodes(actor, trx));
  }

  /** Turns off the actor's own second factor, audited (the caller checked the step-up and the organization's policy). */
  async disableOwnMfa(actor: Actor): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      await this.mfa.clear(actor.userId, trx);
      await this.audit.recordBy(actor, 'mfa.disabled', { type: 'user', id: actor.userId }, undefined, trx);
    });
  }

  /** Re-proves a factor for sensitive actions: the TOTP/recovery code when MFA is on, else the password. */
  async stepUp(actor: Actor, proof: { code?: string; password?: string }): Promise<void> {
    if (!actor.sessionId) throw new ForbiddenError('Step-up applies to interactive sessions, not API keys');
    const user = await this.store.userById(actor.userId);
    if (!user) throw new InvalidCredentialsError();
    const ok = await this.store.db.transaction().execute(async (trx) => {
      let ok: boolean;
      if (user.mfa_enabled_at !== null) {
        if (!proof.code)
          throw new ValidationError('Your account uses MFA: send `code` (a TOTP or recovery code)', { field: 'code' }, 'auth.mfa_required');
        ok = await this.mfa.verifyFactor(user, proof.code, trx);
      } else {
        if (user.password_hash === null)
          throw new ForbiddenError(
            'Your account signs in through single sign-on: sign in again through your identity provider (a fresh sign-in counts as a step-up)',
            ErrorCodes.ssoRequired,
          );
        if (!proof.password) throw new ValidationError('Send `password` to confirm your identity', { field: 'password' });
        ok = user.password_hash !== null && (await verifyPassword(user.password_hash, proof.password));
      }
      // A failure is counted toward the lockout and audited by the caller (LoginService.reprove).
      if (!ok) return false;
      await this.audit.record(
        {
          organizationId: user.organization_id,
          actor: auditActor(actor),
          action: 'auth.step_up',
          target: { type: 'user', id: user.id },
          sourceIp: actor.sourceIp,
        },
        trx,
      );
      await this.sessions.markStepUp(actor.sessionId!, trx);
      return true;
    });
    if (!ok) throw user.mfa_enabled_at !== null ? new MfaInvalidError() : new InvalidCredentialsError();
  }

  /** Throws unless the actor re-proved a factor recently (CLI actors are the platform admin at the console). */
  requireStepUp(actor: Actor): void {
    if (actor.via === 'cli') return;
    if (actor.via === 'api_key')
      throw new ForbiddenError('This action cannot be done with an API key; sign in interactively', 'auth.forbidden');
    if (!this.sessions.hasFreshStepUp(actor.stepUpAt)) throw new StepUpRequiredError(this.sessions.stepUpMinutes);
  }

  private requireGrantable(actor: Actor, role: string): void {
    requireOperator(actor);
    if (!isOperatorRole(role))
      throw new ValidationError(`role must be one of owner, admin, operator, release_engineer, auditor`, { field: 'role' });
    if (!grantableRoles(actor.role!).includes(role))
      throw new ForbiddenError(`A ${actor.role} cannot manage ${role} accounts`, 'auth.forbidden', { role });
  }

  /**
   * Throws `refusal` (org.last_owner) unless an active owner other than the target remains; the
   * organization lock keeps two owners demoting each other, or both leaving, at once from both passing.
   */
  async requireAnotherOwner(
    target: UserRow,
    db: Executor,
    refusal: () => ConflictError = () =>
      new ConflictError('An organization must keep at least one active owner', undefined, 'org.last_owner'),
  ): Promise<void> {
    await this.store.lockOrganization(target.organization_id, db);
    const others = await this.store.otherActiveOwners(target.organization_id, target.id, db);
    if (others.length === 0) throw refusal();
  }

  private async userOf(actor: Actor, userId: string): Promise<UserRow> {
    const row = await this.store.userInOrganization(actor.organizationId, userId);
    if (!row) throw new NotFoundError('User', { userId });
    return row;
  }
}
