/**
 * Operator invitations: an operator with users:manage invites an address into a role they may
 * grant; the invitee accepts with the single-use token from the mail and chooses a password,
 * which creates the operator with the address already verified. An invitation carries no more
 * authority than its inviter still has when it is accepted.
 */
import type { OperatorInvitationView } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { HOUR } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { Config } from '../ops/config.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { invitationMail, tokenLink } from './account-mail.js';
import { InvalidTokenError } from './errors.js';
import type { Mailer } from './mailer.js';
import type { OneTimeTokenRow } from './one-time-token-store.js';
import type { OneTimeTokens } from './one-time-tokens.js';
import { checkPasswordPolicy, hashPassword } from './passwords.js';
import { grantableRoles, isOperatorRole, requireOperator, requirePermission, type Actor, type OperatorRole } from './roles.js';
import { toUserView, validateEmail, type UserView } from './service.js';
import type { AccountsStore } from './store.js';
import { newUserRow } from './store.js';
import type { Executor } from '../storage/executor.js';

/** An operator invitation as the API serves it: a wire shape the console reads too (@bulwark/protocol). */
export type { OperatorInvitationView };

interface InvitationPayload {
  role: OperatorRole;
  name: string;
  invitedBy: string | null;
}

function payloadOf(row: OneTimeTokenRow): InvitationPayload {
  return JSON.parse(row.payload) as InvitationPayload;
}

function toInvitationView(row: OneTimeTokenRow): OperatorInvitationView {
  const { role, name, invitedBy } = payloadOf(row);
  return {
    id: row.id,
    email: row.email,
    name,
    role,
    invitedBy,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
  };
}

/** Throws unless the actor may hand out this role (nobody grants above their own rank). */
function requireMayGrant(actor: Actor, role: string): asserts role is OperatorRole {
  requireOperator(actor);
  if (!isOperatorRole(role))
    throw new ValidationError('role must be one of owner, admin, operator, release_engineer, auditor', { field: 'role' });
  if (!actor.role || !grantableRoles(actor.role).includes(role))
    throw new ForbiddenError(`A ${actor.role ?? 'user without a role'} cannot manage ${role} accounts`, 'auth.forbidden', { role });
}

export class InvitationService {
  constructor(
    private readonly store: AccountsStore,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly config: Config['auth'],
  ) {}

  /** Invites an address into a role, replacing any pending invitation for it, and mails the link. */
  async invite(actor: Actor, input: { email: string; name: string; role: string; linkBase: string }): Promise<OperatorInvitationView> {
    requirePermission(actor, 'users:manage');
    requireMayGrant(actor, input.role);
    const role = input.role;
    const email = validateEmail(input.email);
    const name = input.name.trim();
    if (!name) throw new ValidationError('name must not be empty', { field: 'name' });
    const hours = this.config.inviteTokenHours;
    const { invitation, token } = await this.store.db.transaction().execute(async (trx) => {
      if (await this.store.userByEmail(actor.organizationId, email, trx))
        throw new ConflictError('A user with this email already exists in the organization', { field: 'email' }, 'user.exists');
      const payload: InvitationPayload = { role, name, invitedBy: actor.via === 'cli' ? null : actor.userId };
      const token = await this.tokens.issue(
        { purpose: 'invitation', organizationId: actor.organizationId, userId: null, email, payload: { ...payload }, ttlMs: hours * HOUR },
        trx,
      );
      const row = await this.tokens.rowOf(token, trx);
      await this.audit.recordBy(actor, 'user.invited', { type: 'invitation', id: row.id }, { role }, trx, {
        personal: { subject: null, fields: { email } },
      });
      return { invitation: toInvitationView(row), token };
    });
    const org = await this.store.organizationById(actor.organizationId);
    await this.mailer.send(
      invitationMail({
        to: email,
        organization: org?.name ?? '',
        role,
        link: tokenLink(input.linkBase, 'accept-invitation', token),
        token,
        minutes: hours * 60,
      }),
    );
    return invitation;
  }

  /** Pending invitations of the actor's organization, newest first (never their tokens). */
  async list(actor: Actor): Promise<OperatorInvitationView[]> {
    requirePermission(actor, 'users:read');
    const rows = await this.tokens.usable(actor.organizationId, 'invitation');
    return rows.map(toInvitationView);
  }

  /** Withdraws a pending invitation; its link stops working. */
  async revoke(actor: Actor, invitationId: string): Promise<void> {
    requirePermission(actor, 'users:manage');
    const [row] = await this.tokens.usable(actor.organizationId, 'invitation', invitationId);
    if (!row) throw new NotFoundError('Invitation', { invitationId });
    const { role, name } = payloadOf(row);
    requireMayGrant(actor, role);
    await this.store.db.transaction().execute(async (trx) => {
      if (!(await this.tokens.revoke(row.id, trx))) throw new NotFoundError('Invitation', { invitationId });
      await this.audit.recordBy(actor, 'user.invitation_revoked', { type: 'invitation', id: row.id }, { role }, trx, {
        personal: { subject: null, fields: { email: row.email, name } },
      });
    });
  }

  /**
   * Accepts an invitation: spends the token and creates the operator, email verified, with the
   * chosen password (operator policy). A refused password leaves the invitation usable.
   */
  async accept(input: { token: string; password: string; name?: string; sourceIp: string }): Promise<UserView> {
    try {
      return await this.store.db.transaction().execute(async (trx) => {
        const row = await this.tokens.consume('invitation', input.token, trx);
        const { role, name: invitedName, invitedBy } = payloadOf(row);
        if (!isOperatorRole(role) || !(await this.inviterMayStillGrant(row.organization_id, invitedBy, role, trx)))
          throw new InvalidTokenError('invitation');
        if (await this.store.userByEmail(row.organization_id, row.email, trx))
          throw new ConflictError(
            'A user with this email already exists in the organization; sign in, or reset your password',
            { field: 'email' },
            'user.exists',
          );
        const name = input.name?.trim() || invitedName;
        await checkPasswordPolicy(input.password, 'operator', [row.email, name]);
        const now = this.clock.now();
        const user = newUserRow({
          organizationId: row.organization_id,
          kind: 'operator',
          email: row.email,
          name,
          role,
          passwordHash: await hashPassword(input.password),
          emailVerifiedAt: now,
          mustChangePassword: false,
          now,
        });
        await this.store.insertUser(user, trx);
        await this.audit.record(
          {
            organizationId: row.organization_id,
            actor: { type: 'user', id: user.id },
            action: 'user.invitation_accepted',
            target: { type: 'user', id: user.id },
            sourceIp: input.sourceIp,
            details: { role, invitationId: row.id, invitedBy },
            personal: { subject: user.id, fields: { email: user.email } },
          },
          trx,
        );
        return toUserView(user, now);
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(
          'A user with this email already exists in the organization; sign in, or reset your password',
          { field: 'email' },
          'user.exists',
        );
      if (error instanceof InvalidTokenError) {
        await this.audit.record({
          organizationId: null,
          actor: { type: 'anonymous', id: null },
          action: 'user.invitation_accepted',
          outcome: 'failure',
          sourceIp: input.sourceIp,
          details: { reason: 'invalid_token' },
        });
      }
      throw error;
    }
  }

  /** The inviter is still an active operator of the organization whose role may grant this one. */
  private async inviterMayStillGrant(organizationId: string, inviterId: string | null, role: OperatorRole, db: Executor): Promise<boolean> {
    if (inviterId === null) return true;
    const inviter = await this.store.userInOrganization(organizationId, inviterId, db);
    return (
      inviter !== undefined &&
      inviter.status === 'active' &&
      inviter.kind === 'operator' &&
      inviter.role !== null &&
      isOperatorRole(inviter.role) &&
      grantableRoles(inviter.role).includes(role)
    );
  }
}
