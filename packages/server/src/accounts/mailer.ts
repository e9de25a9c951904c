/**
 * Email delivery: SMTP through nodemailer when configured, otherwise an outbox of JSON files in
 * DIR/outbox (mode 0600) that `bulwark admin outbox` lists, so a fresh install and the tests can
 * read verification and reset links without a mail server.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Transporter } from 'nodemailer';
import type { Config } from '../ops/config.js';
import { newId } from '../tokens.js';
import type { KeyCustody } from '../keys/custody.js';
import { openConfigSecret } from '../keys/sealed-config.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  /** What the mail is for (`password_reset`, `email_verify`, …): lets tests and operators filter. */
  kind: string;
}

export interface OutboxMessage extends Mail {
  id: string;
  createdAt: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Orders mails written in the same millisecond by this process. */
let outboxSequence = 0;

export class OutboxMailer implements Mailer {
  constructor(private readonly dir: string) {}

  async send(mail: Mail): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const message: OutboxMessage = { id: newId(), createdAt: new Date().toISOString(), ...mail };
    const sequence = String(outboxSequence++ % 1e9).padStart(9, '0');
    const name = `${message.createdAt.replace(/[:.]/g, '-')}-${sequence}-${message.id}.json`;
    writeFileSync(join(this.dir, name), JSON.stringify(message, null, 2), { mode: 0o600 });
  }

  /** Deletes mail files last written before `cutoff` (ms since the epoch); returns how many. */
  prune(cutoff: number): number {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return 0;
    }
    let deleted = 0;
    for (const name of names) {
      const file = join(this.dir, name);
      if (statSync(file).mtimeMs >= cutoff) continue;
      rmSync(file, { force: true });
      deleted += 1;
    }
    return deleted;
  }

  /** Oldest first. */
  list(): OutboxMessage[] {
    let names: string[];
    try {
      names = readdirSync(this.dir)
        .filter((n) => n.endsWith('.json'))
        .sort();
    } catch {
      return [];
    }
    return names.map((n) => JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as OutboxMessage);
  }
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(private readonly smtp: Config['smtp'] & { host: string }) {
    // Loaded here, not with this module: every command opening the platform builds a mailer, and
    // nodemailer is about a tenth of the code the CLI loads, which only an SMTP deployment uses.
    const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
    this.transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: !smtp.secure,
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
    });
  }

  async send(mail: Mail): Promise<void> {
    await this.transport.sendMail({
      from: this.smtp.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      headers: { 'X-Bulwark-Kind': mail.kind },
    });
  }
}

export function outboxDir(dataDir: string): string {
  return join(dataDir, 'outbox');
}

/** SMTP when a host is configured (its password opened from the sealed config value), else the outbox. */
export function createMailer(config: Config, box: KeyCustody): Mailer {
  const { smtp } = config;
  if (!smtp.host) return new OutboxMailer(outboxDir(config.dataDir));
  return new SmtpMailer({
    ...smtp,
    host: smtp.host,
    ...(smtp.password === undefined ? {} : { password: openConfigSecret(box, 'smtp.password', smtp.password) }),
  });
}
