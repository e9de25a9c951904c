/**
 * Password reset by email. Asking for a reset is answered before any of its work is done (see
 * `requestAfterAnswer`), so the answer and its timing are the same whether or not the account
 * exists; only an active account gets a mail, and at most one every
 * RESET_MAIL_COOLDOWN_MS and RESET_MAILS_PER_HOUR an hour, counted per account in the database
 * (so the limit holds across nodes and source addresses); a request past it changes nothing and
 * writes no audit entry, and its answer is the same. Completing a reset
 * spends the single-use token, sets the new password, lifts a lockout, signs the user out
 * everywhere and voids other reset links, in one transaction: a refused password (policy)
 * rolls it all back, so the link still works for a better one. The second factor stays.
 */
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { HOUR, MINUTE } from '../clock.js';
import type { Config } from '../ops/config.js';
import { newSecret, sha256Hex } from '../tokens.js';
import { passwordResetDoneMail, passwordResetMail, sendWithoutWaiting, tokenLink } from './account-mail.js';
import { InvalidTokenError } from './errors.js';
import type { Mailer } from './mailer.js';
import { ONE_TIME_TOKEN_PREFIX, type OneTimeTokens } from './one-time-tokens.js';
import { checkPasswordPolicy, hashPassword } from './passwords.js';
import type { SessionService } from './sessions.js';
import type { ApiKeyStore } from './api-key-store.js';
import type { AccountsStore } from './store.js';
import { normalizeEmail } from './store.js';

/** After a reset mail, an account gets no other for this long... */
export const RESET_MAIL_COOLDOWN_MS = 5 * MINUTE;
/** ...and no more than this many in any hour. */
export const RESET_MAILS_PER_HOUR = 3;

export interface ResetRequest {
  organization: string;
  email: string;
  sourceIp: string;
  /** Public base URL of the deployment, for the link in the mail. */
  linkBase: string;
}

export class PasswordRecoveryService {
  /** Reset requests whose answer went out and whose work has not finished. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly store: AccountsStore,
    private readonly sessions: SessionService,
    private readonly apiKeys: ApiKeyStore,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly config: Config['auth'],
  ) {}

  /**
   * Runs `request` once `answered` settles (the HTTP answer has gone out), so that looking the
   * account up, issuing the token and writing the mail add nothing to the answer's time for a
   * known address (they took about a millisecond, enough to tell accounts apart). Failures go
   * to `onError`; `drain` waits for the work.
   */
  requestAfterAnswer(input: ResetRequest, answered: Promise<unknown>, onError: (error: unknown) => void): void {
    const work = answered
      .then(() => this.request(input))
      .catch(onError)
      .finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  /** Waits until every reset request already answered has done its work (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Mails a reset link to an active account; for anything else does comparable work and sends nothing. */
  async request(input: ResetRequest): Promise<void> {
    const email = normalizeEmail(input.email);
    const org = await this.store.organizationBySlug(input.organization);
    const user = org ? await this.store.userByEmail(org.id, email) : undefined;
    if (!org || !user || user.status !== 'active') {
      sha256Hex(newSecret(ONE_TIME_TOKEN_PREFIX));
      await this.audit.record({
        organizationId: org?.id ?? null,
        actor: { type: 'anonymous', id: null },
        action: 'user.password_reset_requested',
        outcome: 'failure',
        sourceIp: input.sourceIp,
        details: { reason: user ? 'inactive' : 'unknown_account' },
        personal: { subject: user?.id ?? null, fields: { email } },
      });
      return;
    }
    const minutes = this.config.resetTokenMinutes;
    const token = await this.store.db.transaction().execute(async (trx) => {
      // Two requests at once (on two nodes) must not both find the account's mail budget unspent.
      await this.store.lockUser(user.id, trx);
      const now = this.clock.now();
      const sent = await this.tokens.issuedSince(user.id, 'password_reset', now - HOUR, trx);
      if (sent.length >= RESET_MAILS_PER_HOUR || (sent[0] !== undefined && now - sent[0] < RESET_MAIL_COOLDOWN_MS)) return null;
      const token = await this.tokens.issue(
        { purpose: 'password_reset', organizationId: org.id, userId: user.id, email: user.email, ttlMs: minutes * MINUTE },
        trx,
      );
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'anonymous', id: null },
          action: 'user.password_reset_requested',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
        },
        trx,
      );
      return token;
    });
    // The account had its reset mail recently: the link in that one still works.
    if (token === null) return;
    sendWithoutWaiting(
      this.mailer,
      this.audit,
      org.id,
      passwordResetMail({
        to: user.email,
        organization: org.name,
        link: tokenLink(input.linkBase, 'reset-password', token),
        token,
        minutes,
        sourceIp: input.sourceIp,
      }),
    );
  }

  /** Sets a new password with a reset token; throws InvalidTokenError or PasswordRejectedError. */
  async complete(input: { token: string; newPassword: string; sourceIp: string }): Promise<void> {
    try {
      const done = await this.store.db.transaction().execute(async (trx) => {
        const row = await this.tokens.consume('password_reset', input.token, trx);
        const user = row.user_id ? await this.store.userById(row.user_id, trx) : undefined;
        // The account changed since the link was sent (address, organization, disabled): the link is void.
        if (!user || user.organization_id !== row.organization_id || user.email !== row.email || user.status !== 'active')
          throw new InvalidTokenError('password reset');
        await checkPasswordPolicy(input.newPassword, user.kind, [user.email, user.name]);
        const now = this.clock.now();
        await this.store.updateUser(
          user.id,
          {
            password_hash: await hashPassword(input.newPassword),
            password_changed_at: now,
            must_change_password: 0,
            failed_logins: 0,
            locked_until: null,
            // The link reached this mailbox: that proves the address as well as a verification link would.
            email_verified_at: user.email_verified_at ?? now,
            updated_at: now,
          },
          trx,
        );
        const sessionsRevoked = await this.sessions.revokeAll(user.id, trx);
        // Recovery assumes the account may have been taken over: keys made meanwhile die too.
        const apiKeysRevoked = await this.apiKeys.revokeAllOfUser(user.id, now, trx);
        await this.tokens.revokeAll(user.id, 'password_reset', trx);
        await this.audit.record(
          {
            organizationId: user.organization_id,
            actor: { type: 'user', id: user.id },
            action: 'user.password_reset',
            target: { type: 'user', id: user.id },
            sourceIp: input.sourceIp,
            details: { sessionsRevoked, apiKeysRevoked },
          },
          trx,
        );
        const org = await this.store.organizationById(user.organization_id, trx);
        return { user, organization: org?.name ?? '' };
      });
      sendWithoutWaiting(
        this.mailer,
        this.audit,
        done.user.organization_id,
        passwordResetDoneMail({ to: done.user.email, organization: done.organization, sourceIp: input.sourceIp }),
      );
    } catch (error) {
      if (error instanceof InvalidTokenError) {
        await this.audit.record({
          organizationId: null,
          actor: { type: 'anonymous', id: null },
          action: 'user.password_reset',
          outcome: 'failure',
          sourceIp: input.sourceIp,
          details: { reason: 'invalid_token' },
        });
      }
      throw error;
    }
  }
}
