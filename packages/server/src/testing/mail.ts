/**
 * Reading the outbox in tests: the mails an action sent, and the one-time token a mail carries.
 */
import assert from 'node:assert/strict';
import { OutboxMailer, outboxDir, type OutboxMessage } from '../accounts/mailer.js';
import type { TestPlatform } from './server.js';

/** The mails sent while `action` ran, including those of password reset requests that answered before mailing. */
export async function mailsDuring(t: TestPlatform, action: () => Promise<unknown>): Promise<OutboxMessage[]> {
  const outbox = new OutboxMailer(outboxDir(t.config.dataDir));
  const before = new Set(outbox.list().map((m) => m.id));
  await action();
  await t.platform.accounts.recovery.drain();
  return outbox.list().filter((m) => !before.has(m.id));
}

/** The one-time token (bwt_…) in a mail's text. */
export function tokenIn(mail: OutboxMessage): string {
  const match = /bwt_[A-Za-z0-9_-]{43}/.exec(mail.text);
  assert.ok(match, `no token in mail: ${mail.text}`);
  return match[0];
}
