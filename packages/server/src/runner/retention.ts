/**
 * The daily retention job for what has no use once it is old: ended sessions (signed out, revoked,
 * expired or idle more than `retention.sessionsDays` ago) and mail files in DIR/outbox older than
 * `retention.outboxDays`. The audit log is never pruned (its hash chain and signed checkpoints
 * prove nothing was removed); telemetry has its own retention (telemetry.retentionDays).
 */
import { OutboxMailer, outboxDir } from '../accounts/mailer.js';
import { DAY } from '../clock.js';
import type { Platform } from '../platform.js';

export interface RetentionResult {
  sessions: number;
  outboxMails: number;
}

export async function runRetention(platform: Pick<Platform, 'config' | 'clock' | 'audit' | 'accounts'>): Promise<RetentionResult> {
  const { retention, dataDir } = platform.config;
  const sessions = await platform.accounts.sessions.prune(retention.sessionsDays);
  // Also when SMTP is configured now: files the outbox kept before it was.
  const outboxMails = new OutboxMailer(outboxDir(dataDir)).prune(platform.clock.now() - retention.outboxDays * DAY);
  if (sessions + outboxMails > 0) {
    await platform.audit.record({
      organizationId: null,
      actor: { type: 'system', id: null },
      action: 'retention.pruned',
      details: { sessions, outboxMails, sessionsDays: retention.sessionsDays, outboxDays: retention.outboxDays },
    });
  }
  return { sessions, outboxMails };
}
