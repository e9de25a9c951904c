/**
 * The emails of the self-service account flows (password reset, sign-up, email verification,
 * invitations) and how they leave. Links carry the token in the URL fragment, which browsers
 * send to no server and put in no Referer; every mail also quotes the raw token for API users.
 * Mails answering anonymous requests go out without holding the answer back, so the latency
 * of a mail server does not tell a caller which accounts exist.
 */
import type { AuditService } from '../audit/service.js';
import type { Mail, Mailer } from './mailer.js';

/** `https://host/page#token=…`, from the deployment's public base URL. */
export function tokenLink(base: string, page: string, token: string): string {
  return `${base.replace(/\/+$/, '')}/${page}#token=${token}`;
}

function within(minutes: number): string {
  if (minutes % 60 !== 0) return `${minutes} minutes`;
  const hours = minutes / 60;
  return hours === 1 ? '1 hour' : `${hours} hours`;
}

export function passwordResetMail(input: {
  to: string;
  organization: string;
  link: string;
  token: string;
  minutes: number;
  sourceIp: string;
}): Mail {
  return {
    to: input.to,
    kind: 'password_reset',
    subject: 'Reset your Bulwark password',
    text: [
      `Someone (hopefully you, from ${input.sourceIp}) asked to reset the password of your Bulwark account in organization "${input.organization}".`,
      '',
      `To choose a new password, open this link within ${within(input.minutes)}:`,
      input.link,
      '',
      'API clients: send this token to POST /api/v1/auth/password-reset/complete',
      input.token,
      '',
      'If you did not ask for this, ignore this email: your password stays as it is.',
    ].join('\n'),
  };
}

export function passwordResetDoneMail(input: { to: string; organization: string; sourceIp: string }): Mail {
  return {
    to: input.to,
    kind: 'password_reset_done',
    subject: 'Your Bulwark password was reset',
    text: [
      `The password of your Bulwark account in organization "${input.organization}" was just reset (from ${input.sourceIp}), and every session was signed out.`,
      '',
      'If this was not you, ask for a new reset link at once and tell your administrator.',
    ].join('\n'),
  };
}

export function verifyEmailMail(input: { to: string; organization: string; link: string; token: string; minutes: number }): Mail {
  return {
    to: input.to,
    kind: 'email_verify',
    subject: 'Confirm your email address for Bulwark',
    text: [
      `Confirm that this is your address to finish creating your Bulwark account in organization "${input.organization}".`,
      '',
      `Open this link within ${within(input.minutes)}:`,
      input.link,
      '',
      'API clients: send this token to POST /api/v1/auth/verify-email',
      input.token,
      '',
      'If you did not sign up, ignore this email: no account is activated without this step.',
    ].join('\n'),
  };
}

export function signupExistingAccountMail(input: { to: string; organization: string; sourceIp: string }): Mail {
  return {
    to: input.to,
    kind: 'signup_existing_account',
    subject: 'Someone tried to sign up with your address',
    text: [
      `Someone (from ${input.sourceIp}) tried to create a Bulwark account in organization "${input.organization}" with this address, which already has an account.`,
      '',
      'If it was you and you forgot your password, reset it: POST /api/v1/auth/password-reset/request, or "Forgot password" when signing in.',
      'If it was not you, you need do nothing: your account is unchanged.',
    ].join('\n'),
  };
}

export function invitationMail(input: {
  to: string;
  organization: string;
  role: string;
  link: string;
  token: string;
  minutes: number;
}): Mail {
  return {
    to: input.to,
    kind: 'invitation',
    subject: `You are invited to ${input.organization} on Bulwark`,
    text: [
      `You are invited to join organization "${input.organization}" on Bulwark as ${input.role}.`,
      '',
      `To accept and choose your password, open this link within ${within(input.minutes)}:`,
      input.link,
      '',
      'API clients: send this token to POST /api/v1/invitations/accept',
      input.token,
      '',
      'If you did not expect this invitation, ignore this email.',
    ].join('\n'),
  };
}

/**
 * Hands a mail to the mailer without waiting for delivery (the outbox writes it before this
 * returns; SMTP finishes later). A delivery failure is recorded in the audit log.
 */
export function sendWithoutWaiting(mailer: Mailer, audit: AuditService, organizationId: string | null, mail: Mail): void {
  mailer.send(mail).catch((error: unknown) =>
    audit
      .record({
        organizationId,
        actor: { type: 'system', id: null },
        action: 'mail.failed',
        outcome: 'failure',
        details: { kind: mail.kind, reason: error instanceof Error ? error.message : String(error) },
      })
      .catch(() => undefined),
  );
}
