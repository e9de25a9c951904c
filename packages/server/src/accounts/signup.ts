/**
 * Consumer self-service: sign-up, email verification and a new verification link. None of these
 * answers tells a caller whether an organization or an address is known: a sign-up with a taken
 * address gets the same answer after the same argon2id work, and the address's owner gets a
 * notice instead of a link. A consumer cannot sign in until the address is verified (login.ts).
 */
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { HOUR } from '../clock.js';
import { ValidationError } from '../errors.js';
import type { Config } from '../ops/config.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { newSecret, sha256Hex } from '../tokens.js';
import { sendWithoutWaiting, signupExistingAccountMail, tokenLink, verifyEmailMail } from './account-mail.js';
import { InvalidTokenError } from './errors.js';
import type { Mail, Mailer } from './mailer.js';
import { ONE_TIME_TOKEN_PREFIX, type OneTimeTokens } from './one-time-tokens.js';
import { checkPasswordPolicy, hashPassword } from './passwords.js';
import { validateEmail } from './service.js';
import type { AccountsStore, OrganizationRow, UserRow } from './store.js';
import { newUserRow, normalizeEmail } from './store.js';
import type { Executor } from '../storage/executor.js';

export interface SignupInput {
  organization: string;
  email: string;
  password: string;
  name: string;
  sourceIp: string;
  /** Public base URL of the deployment, for the link in the mail. */
  linkBase: string;
}

export class SignupService {
  constructor(
    private readonly store: AccountsStore,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly config: Config['auth'],
  ) {}

  /**
   * Creates an unverified consumer and mails a verification link; when the address is taken,
   * mails its owner a notice instead; when the organization is unknown, sends nothing. The
   * password is checked and hashed first on every path, so all of them cost the same.
   */
  async signup(input: SignupInput): Promise<void> {
    const email = validateEmail(input.email);
    const name = input.name.trim();
    if (!name) throw new ValidationError('name must not be empty', { field: 'name' });
    await checkPasswordPolicy(input.password, 'consumer', [email, name]);
    const passwordHash = await hashPassword(input.password);
    const org = await this.store.organizationBySlug(input.organization);
    if (!org) {
      sha256Hex(newSecret(ONE_TIME_TOKEN_PREFIX));
      await this.audit.record({
        organizationId: null,
        actor: { type: 'anonymous', id: null },
        action: 'user.signup',
        outcome: 'failure',
        sourceIp: input.sourceIp,
        details: { reason: 'unknown_organization' },
        personal: { subject: null, fields: { email } },
      });
      return;
    }
    let mail: Mail;
    try {
      mail = await this.store.db.transaction().execute((trx) => this.createConsumer(org, { ...input, email, name }, passwordHash, trx));
    } catch (error) {
      // Two sign-ups for one address at once: the loser is answered like any taken address.
      if (!isUniqueViolation(error)) throw error;
      mail = await this.store.db.transaction().execute((trx) => this.createConsumer(org, { ...input, email, name }, passwordHash, trx));
    }
    sendWithoutWaiting(this.mailer, this.audit, org.id, mail);
  }

  /** Marks the address of the token's user verified; throws InvalidTokenError. */
  async verifyEmail(input: { token: string; sourceIp: string }): Promise<void> {
    try {
      await this.store.db.transaction().execute(async (trx) => {
        const row = await this.tokens.consume('email_verify', input.token, trx);
        const user = row.user_id ? await this.store.userById(row.user_id, trx) : undefined;
        // The address changed since the link was sent: it proves nothing about the new one.
        if (!user || user.organization_id !== row.organization_id || user.email !== row.email)
          throw new InvalidTokenError('email verification');
        const now = this.clock.now();
        if (user.email_verified_at === null) await this.store.updateUser(user.id, { email_verified_at: now, updated_at: now }, trx);
        await this.audit.record(
          {
            organizationId: user.organization_id,
            actor: { type: 'user', id: user.id },
            action: 'user.email_verified',
            target: { type: 'user', id: user.id },
            sourceIp: input.sourceIp,
            personal: { subject: user.id, fields: { email: user.email } },
          },
          trx,
        );
      });
    } catch (error) {
      if (error instanceof InvalidTokenError) {
        await this.audit.record({
          organizationId: null,
          actor: { type: 'anonymous', id: null },
          action: 'user.email_verified',
          outcome: 'failure',
          sourceIp: input.sourceIp,
          details: { reason: 'invalid_token' },
        });
      }
      throw error;
    }
  }

  /** Mails a new verification link (voiding earlier ones) to an unverified consumer; otherwise sends nothing. */
  async resendVerification(input: { organization: string; email: string; sourceIp: string; linkBase: string }): Promise<void> {
    const email = normalizeEmail(input.email);
    const org = await this.store.organizationBySlug(input.organization);
    const user = org ? await this.store.userByEmail(org.id, email) : undefined;
    if (!org || !user || user.kind !== 'consumer' || user.status !== 'active' || user.email_verified_at !== null) {
      sha256Hex(newSecret(ONE_TIME_TOKEN_PREFIX));
      const reason = !user ? 'unknown_account' : user.email_verified_at !== null ? 'already_verified' : 'not_eligible';
      await this.audit.record({
        organizationId: org?.id ?? null,
        actor: { type: 'anonymous', id: null },
        action: 'user.verification_requested',
        outcome: 'failure',
        sourceIp: input.sourceIp,
        details: { reason },
        personal: { subject: user?.id ?? null, fields: { email } },
      });
      return;
    }
    const mail = await this.store.db.transaction().execute(async (trx) => {
      const mail = await this.verificationMail(org, user, input.linkBase, trx);
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'anonymous', id: null },
          action: 'user.verification_requested',
          target: { type: 'user', id: user.id },
          sourceIp: input.sourceIp,
        },
        trx,
      );
      return mail;
    });
    sendWithoutWaiting(this.mailer, this.audit, org.id, mail);
  }

  private async createConsumer(org: OrganizationRow, input: SignupInput, passwordHash: string, trx: Executor): Promise<Mail> {
    const existing = await this.store.userByEmail(org.id, input.email, trx);
    if (existing) {
      await this.audit.record(
        {
          organizationId: org.id,
          actor: { type: 'anonymous', id: null },
          action: 'user.signup',
          outcome: 'denied',
          target: { type: 'user', id: existing.id },
          sourceIp: input.sourceIp,
          details: { reason: 'email_taken' },
          personal: { subject: existing.id, fields: { email: input.email } },
        },
        trx,
      );
      return signupExistingAccountMail({ to: existing.email, organization: org.name, sourceIp: input.sourceIp });
    }
    const now = this.clock.now();
    const user = newUserRow({
      organizationId: org.id,
      kind: 'consumer',
      email: input.email,
      name: input.name,
      role: null,
      passwordHash,
      emailVerifiedAt: null,
      mustChangePassword: false,
      now,
    });
    await this.store.insertUser(user, trx);
    const mail = await this.verificationMail(org, user, input.linkBase, trx);
    await this.audit.record(
      {
        organizationId: org.id,
        actor: { type: 'user', id: user.id },
        action: 'user.signup',
        target: { type: 'user', id: user.id },
        sourceIp: input.sourceIp,
        personal: { subject: user.id, fields: { email: user.email } },
      },
      trx,
    );
    return mail;
  }

  private async verificationMail(org: OrganizationRow, user: UserRow, linkBase: string, trx: Executor): Promise<Mail> {
    const hours = this.config.verifyTokenHours;
    const token = await this.tokens.issue(
      { purpose: 'email_verify', organizationId: org.id, userId: user.id, email: user.email, ttlMs: hours * HOUR },
      trx,
    );
    return verifyEmailMail({
      to: user.email,
      organization: org.name,
      link: tokenLink(linkBase, 'verify-email', token),
      token,
      minutes: hours * 60,
    });
  }
}
