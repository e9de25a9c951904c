/**
 * The emails of a user's own account changes: confirming a new address, telling the old address
 * about the request, answering a request for an address that cannot be used, and confirming that
 * an account was deleted. Links carry the token in the URL fragment, which browsers send to no
 * server; every token mail also quotes the raw token for API users.
 */
import { configuredPublicUrl, type Config } from '../ops/config.js';
import type { Mail } from './mailer.js';

/** `https://host/page#token=…` on the deployment's public address. */
export function accountLink(http: Config['http'], page: string, token: string): string {
  return `${configuredPublicUrl(http)}/${page}#token=${token}`;
}

/**
 * The page an email-change link opens: an operator's the console's (/console/account/email), a
 * consumer's the companion app's (/account/email, which the platform redirects to /app/account/email).
 */
export function emailChangePage(kind: 'operator' | 'consumer'): string {
  return kind === 'operator' ? 'console/account/email' : 'account/email';
}

export function emailChangeMail(input: { to: string; organization: string; link: string; token: string; hours: number }): Mail {
  return {
    to: input.to,
    kind: 'email_change',
    subject: 'Confirm your new email address for Bulwark',
    text: [
      `Someone signed in to a Bulwark account in organization "${input.organization}" asked to use this address for it.`,
      '',
      `If it was you, sign in and open this link within ${input.hours} hours to confirm:`,
      input.link,
      '',
      'API clients: send this token, with your session, to POST /api/v1/me/email/confirm',
      input.token,
      '',
      'If it was not you, ignore this email: nothing changes without this step.',
    ].join('\n'),
  };
}

export function emailChangeNoticeMail(input: { to: string; organization: string; newEmail: string; sourceIp: string }): Mail {
  return {
    to: input.to,
    kind: 'email_change_notice',
    subject: 'A change of your Bulwark email address was requested',
    text: [
      `Someone signed in to your Bulwark account in organization "${input.organization}" (from ${input.sourceIp}) asked to change its address to ${input.newEmail}.`,
      'The change happens only once that address confirms it.',
      '',
      'If this was not you, change your password and revoke your sessions and API keys at once, and tell your administrator.',
    ].join('\n'),
  };
}

/** Sent instead of a token when the address already belongs to another account, so the requester learns nothing. */
export function emailChangeUnavailableMail(input: { to: string; organization: string }): Mail {
  return {
    to: input.to,
    kind: 'email_change_unavailable',
    subject: 'Someone asked to use your address on Bulwark',
    text: [
      `Someone signed in to another Bulwark account in organization "${input.organization}" asked to move that account to this address, which already has an account.`,
      'Nothing was changed, and you need do nothing.',
    ].join('\n'),
  };
}

export function accountDeletedMail(input: { to: string; organization: string; sourceIp: string }): Mail {
  return {
    to: input.to,
    kind: 'account_deleted',
    subject: 'Your Bulwark account was deleted',
    text: [
      `Your Bulwark account in organization "${input.organization}" was deleted at your request (from ${input.sourceIp}), with its sessions and API keys.`,
      'The organization keeps its tamper-evident audit log, which records that this happened.',
      '',
      'If this was not you, tell your administrator at once.',
    ].join('\n'),
  };
}
