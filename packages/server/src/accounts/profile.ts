/**
 * The signed-in user's own account: read it, rename it, change its email address (confirmed by a
 * single-use token sent to the new address, with a notice to the old one), export everything the
 * platform holds about it, and delete it. Changes need an interactive session (not an API key);
 * the email change and deletion also need a fresh step-up. Every write is audited in its
 * transaction; the audit log itself is append-only and survives the account.
 */
import type { AuditEntry, AuditQuery, AuditService } from '../audit/service.js';
import { HOUR, iso, type Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { Config } from '../ops/config.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import type { ApiKeyService, ApiKeyView } from './api-keys.js';
import { InvalidTokenError } from './errors.js';
import type { Mailer } from './mailer.js';
import type { MfaService } from './mfa.js';
import type { OneTimeTokens } from './one-time-tokens.js';
import type { PasskeyService } from './passkeys.js';
import {
  accountDeletedMail,
  accountLink,
  emailChangeMail,
  emailChangeNoticeMail,
  emailChangePage,
  emailChangeUnavailableMail,
} from './profile-mail.js';
import { auditActor, type Actor } from './roles.js';
import { toUserView, validateEmail, type AccountsService, type UserView } from './service.js';
import type { AccountsStore, OrganizationRow, UserRow } from './store.js';
import { ACCOUNT_DELETED, sessionFields, type SessionView } from './sessions.js';
import type { Executor } from '../storage/executor.js';

/** The last active owner cannot leave: the organization would have nobody able to administer it. */
export class LastOwnerError extends ConflictError {
  constructor() {
    super(
      'You are the last active owner of this organization: make another user owner before deleting your account',
      undefined,
      'org.last_owner',
    );
  }
}

/** A session in the data export: what the listing shows, and when it was revoked. */
export interface ExportedSession extends Omit<SessionView, 'current'> {
  revokedAt: string | null;
}

/** What the platform holds about a user, minus every secret and digest. */
export interface AccountExport {
  exportedAt: string;
  profile: UserView;
  organization: { id: string; slug: string; name: string };
  mfa: { enabled: boolean; enabledAt: string | null; recoveryCodesRemaining: number };
  sessions: ExportedSession[];
  apiKeys: ApiKeyView[];
  auditEntries: Omit<AuditEntry, 'hash'>[];
  /** What other domains hold about the user, by section (`devices`: the devices bound to them and their role). */
  sections: Record<string, unknown>;
}

/** What another domain adds to a user's export: its section's name and content. */
export type AccountExportHook = (user: { id: string; organizationId: string }) => Promise<[string, unknown]>;

const AUDIT_PAGE = 500;

function requireInteractive(actor: Actor): void {
  // A companion app acts for its signed-in consumer (its routes name the `account` scope); API keys and the CLI do not.
  if (actor.via !== 'session' && actor.via !== 'app')
    throw new ForbiddenError(
      'Changing or exporting your own account needs an interactive session or a companion app, not an API key or the CLI',
      'auth.forbidden',
    );
}

/**
 * What another domain does when an account is deleted, inside the deletion's transaction (binding:
 * the user's devices are unbound); what it returns runs once the deletion has committed.
 */
export type AccountDeletionHook = (
  user: { id: string; organizationId: string; email: string },
  trx: Executor,
) => Promise<() => Promise<void>>;

export class ProfileService {
  private readonly deletionHooks: AccountDeletionHook[] = [];
  private readonly exportHooks: AccountExportHook[] = [];

  constructor(
    private readonly store: AccountsStore,
    private readonly accounts: AccountsService,
    private readonly tokens: OneTimeTokens,
    private readonly mfa: MfaService,
    private readonly apiKeys: ApiKeyService,
    private readonly audit: AuditService,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly passkeysOfUser: Pick<PasskeyService, 'clear'>,
  ) {}

  /** Registers what another domain does when an account is deleted (the composition root wires it). */
  onAccountDeletion(hook: AccountDeletionHook): void {
    this.deletionHooks.push(hook);
  }

  /** Registers a section another domain adds to the user's data export (the composition root wires it). */
  onAccountExport(hook: AccountExportHook): void {
    this.exportHooks.push(hook);
  }

  async me(actor: Actor): Promise<UserView> {
    return toUserView(await this.userOf(actor), this.clock.now());
  }

  async rename(actor: Actor, name: string): Promise<UserView> {
    requireInteractive(actor);
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 200) throw new ValidationError('name must be 1-200 characters', { field: 'name' });
    await this.userOf(actor);
    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      await this.store.updateUser(actor.userId, { name: trimmed, updated_at: now }, trx);
      await this.audit.recordBy(actor, 'user.updated', { type: 'user', id: actor.userId }, undefined, trx, {
        personal: { subject: actor.userId, fields: { name: trimmed } },
      });
      return toUserView((await this.store.userById(actor.userId, trx))!, now);
    });
  }

  /**
   * Mails a confirmation token to the new address and a notice to the current one. An address that
   * already has an account gets a notice instead of a token, and the caller gets the same answer
   * either way, so this cannot be used to find out who has an account. The link opens the face the
   * account uses (profile-mail.ts emailChangePage): the console for an operator, the app for a consumer.
   */
  async requestEmailChange(actor: Actor, newEmailInput: string): Promise<void> {
    requireInteractive(actor);
    this.accounts.requireStepUp(actor);
    const newEmail = validateEmail(newEmailInput);
    const user = await this.userOf(actor);
    if (newEmail === user.email) throw new ValidationError('newEmail is already the address of your account', { field: 'newEmail' });
    const org = await this.organizationOf(actor);
    const taken = (await this.store.userByEmail(org.id, newEmail)) !== undefined;
    const hours = this.config.auth.verifyTokenHours;
    const token = await this.store.db.transaction().execute(async (trx) => {
      let issued: string | null = null;
      if (taken) await this.tokens.revokeAll(user.id, 'email_change', trx);
      else
        issued = await this.tokens.issue(
          { purpose: 'email_change', organizationId: org.id, userId: user.id, email: newEmail, payload: { newEmail }, ttlMs: hours * HOUR },
          trx,
        );
      await this.audit.record(
        {
          organizationId: org.id,
          actor: auditActor(actor),
          action: 'user.email_change_requested',
          target: { type: 'user', id: user.id },
          sourceIp: actor.sourceIp,
          details: { newEmail },
        },
        trx,
      );
      return issued;
    });
    await this.mailer.send(
      token
        ? emailChangeMail({
            to: newEmail,
            organization: org.name,
            link: accountLink(this.config.http, emailChangePage(actor.kind), token),
            token,
            hours,
          })
        : emailChangeUnavailableMail({ to: newEmail, organization: org.name }),
    );
    await this.mailer.send(emailChangeNoticeMail({ to: user.email, organization: org.name, newEmail, sourceIp: actor.sourceIp }));
  }

  /** Applies an email change: the token proves the new address, the session proves the account. */
  async confirmEmailChange(actor: Actor, token: string): Promise<UserView> {
    requireInteractive(actor);
    try {
      return await this.store.db.transaction().execute(async (trx) => {
        const spent = await this.tokens.consume('email_change', token, trx);
        // Someone else's token: refuse and roll back, so it stays usable by its owner.
        if (spent.user_id !== actor.userId || spent.organization_id !== actor.organizationId) throw new InvalidTokenError('email change');
        const { newEmail } = JSON.parse(spent.payload) as { newEmail?: unknown };
        if (typeof newEmail !== 'string') throw new InvalidTokenError('email change');
        const user = await this.store.userById(actor.userId, trx);
        if (!user) throw new NotFoundError('User');
        const holder = await this.store.userByEmail(actor.organizationId, newEmail, trx);
        if (holder && holder.id !== user.id) throw this.emailTaken();
        const now = this.clock.now();
        await this.store.updateUser(user.id, { email: newEmail, email_verified_at: now, updated_at: now }, trx);
        // Links already mailed to the previous address must not keep working for this account.
        await this.tokens.revokeAll(user.id, 'password_reset', trx);
        await this.tokens.revokeAll(user.id, 'email_verify', trx);
        await this.audit.recordBy(actor, 'user.email_changed', { type: 'user', id: user.id }, undefined, trx, {
          personal: { subject: user.id, fields: { previousEmail: user.email, newEmail } },
        });
        return toUserView((await this.store.userById(user.id, trx))!, now);
      });
    } catch (error) {
      // The unique (organization, email) index caught a concurrent change to the same address.
      if (isUniqueViolation(error)) throw this.emailTaken();
      throw error;
    }
  }

  async exportData(actor: Actor): Promise<AccountExport> {
    requireInteractive(actor);
    const user = await this.userOf(actor);
    const org = await this.organizationOf(actor);
    const now = this.clock.now();
    const sessions = await this.store.sessionsOfUser(user.id);
    const apiKeys = await this.apiKeys.listMine(actor);
    const auditEntries = await this.auditEntriesOf(
      user.id,
      apiKeys.map((k) => k.id),
      actor.organizationId,
    );
    const sections: Record<string, unknown> = {};
    for (const hook of this.exportHooks) {
      const [name, content] = await hook({ id: user.id, organizationId: user.organization_id });
      sections[name] = content;
    }
    await this.audit.recordBy(actor, 'user.data_exported', { type: 'user', id: user.id });
    return {
      exportedAt: new Date(now).toISOString(),
      profile: toUserView(user, now),
      organization: { id: org.id, slug: org.slug, name: org.name },
      mfa: {
        enabled: user.mfa_enabled_at !== null,
        enabledAt: iso(user.mfa_enabled_at),
        recoveryCodesRemaining: await this.mfa.remainingRecoveryCodes(user.id),
      },
      sessions: sessions.map((s) => ({ ...sessionFields(s), revokedAt: iso(s.revoked_at) })),
      apiKeys,
      auditEntries,
      sections,
    };
  }

  /**
   * Deletes the actor's account with its sessions, recovery codes, API keys and pending tokens.
   * The audit log keeps its entries (it is append-only) and records the deletion.
   */
  async deleteAccount(actor: Actor): Promise<void> {
    requireInteractive(actor);
    this.accounts.requireStepUp(actor);
    const org = await this.organizationOf(actor);
    const afterCommit: (() => Promise<void>)[] = [];
    const user = await this.store.db.transaction().execute(async (trx) => {
      const user = await this.store.userById(actor.userId, trx);
      if (!user) throw new NotFoundError('User');
      if (user.role === 'owner' && user.status === 'active') await this.accounts.requireAnotherOwner(user, trx, () => new LastOwnerError());
      for (const hook of this.deletionHooks)
        afterCommit.push(await hook({ id: user.id, organizationId: user.organization_id, email: user.email }, trx));
      await this.tokens.deleteOfUser(user.id, trx);
      await this.apiKeys.deleteOfUser(user.id, trx);
      await this.store.deleteRecoveryCodes(user.id, trx);
      await this.passkeysOfUser.clear(user.id, trx);
      await this.store.deleteSessionsOfUser(user.id, trx);
      // The companion apps' consents, grants and refresh tokens of the user go too.
      await this.accounts.endSignIns(user.id, ACCOUNT_DELETED, trx);
      // The personal fields audit entries hold about the user go; the chain (pseudonymous IDs only) stays and verifies.
      await this.audit.erasePersonalDataOf(user.id, trx);
      await this.store.deleteUser(user.id, trx);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: auditActor(actor),
          action: 'user.deleted',
          target: { type: 'user', id: user.id },
          sourceIp: actor.sourceIp,
          details: { kind: user.kind, role: user.role, self: true },
        },
        trx,
      );
      return user;
    });
    for (const task of afterCommit) await task();
    await this.mailer.send(accountDeletedMail({ to: user.email, organization: org.name, sourceIp: actor.sourceIp }));
  }

  /** Entries where the user, or one of their API keys, acted, or where the user was the target; newest first. */
  private async auditEntriesOf(userId: string, apiKeyIds: string[], organizationId: string): Promise<Omit<AuditEntry, 'hash'>[]> {
    const bySeq = new Map<number, Omit<AuditEntry, 'hash'>>();
    const filters: AuditQuery[] = [{ actorId: userId }, { targetId: userId }, ...apiKeyIds.map((id) => ({ actorId: id }))];
    for (const filter of filters) {
      for (let before: number | undefined; ;) {
        const page = await this.audit.query({ ...filter, organizationId, limit: AUDIT_PAGE, ...(before === undefined ? {} : { before }) });
        for (const { hash: _hash, ...entry } of page.entries) bySeq.set(entry.seq, entry);
        if (page.nextCursor === null) break;
        before = page.nextCursor;
      }
    }
    return [...bySeq.values()].sort((a, b) => b.seq - a.seq);
  }

  private emailTaken(): ConflictError {
    return new ConflictError('Another account of your organization now uses this address', { field: 'newEmail' }, 'user.exists');
  }

  private async userOf(actor: Actor): Promise<UserRow> {
    const user = await this.store.userInOrganization(actor.organizationId, actor.userId);
    if (!user) throw new NotFoundError('User');
    return user;
  }

  private async organizationOf(actor: Actor): Promise<OrganizationRow> {
    const org = await this.store.organizationById(actor.organizationId);
    if (!org) throw new NotFoundError('Organization');
    return org;
  }
}
