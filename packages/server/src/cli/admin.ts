/**
 * `bulwark admin …`: the platform admin's door to account administration, through the same
 * services as the HTTP API (create users, unlock, reset MFA, sessions, organizations, outbox),
 * and the node's own secrets (SMTP password, metrics scrape token).
 */
import type { Command } from 'commander';
import { OutboxMailer, outboxDir } from '../accounts/mailer.js';
import { cliActor, isOperatorRole, OPERATOR_ROLES } from '../accounts/roles.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Platform } from '../platform.js';
import { action, actorForOrganization, addDataDir, configFor, print, withPlatform, type GlobalOptions } from './context.js';
import { storeConfigSecret, storeConfigValue } from '../keys/sealed-config.js';
import { newScrapeToken } from '../ops/scrape-token.js';

interface UserFlags extends GlobalOptions {
  org: string;
  email: string;
}

async function userByEmail(platform: Platform, flags: UserFlags) {
  const actor = await actorForOrganization(platform, flags.org);
  const user = await platform.accounts.store.userByEmail(actor.organizationId, flags.email);
  if (!user) throw new NotFoundError(`User ${flags.email} in organization "${flags.org}"`);
  return { actor, user };
}

function userCommand(admin: Command, name: string, description: string): Command {
  return addDataDir(admin.command(name).description(description))
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--email <email>', "the user's email")
    .option('--json', 'machine-readable output');
}

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('administer organizations and accounts');

  addDataDir(admin.command('create-org').description('create an organization (a brand) with its first owner'))
    .requiredOption('--slug <slug>', 'short name used at sign-in')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--owner-email <email>', "the first owner's email")
    .option('--owner-name <name>', "the first owner's name", 'Owner')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { slug: string; name: string; ownerEmail: string; ownerName: string }) =>
        withPlatform(flags, async (platform) => {
          const result = await platform.db.transaction().execute(async (trx) => {
            const org = await platform.accounts.service.createOrganization(
              { slug: flags.slug, name: flags.name },
              { type: 'cli', id: process.env.USER ?? 'cli' },
              trx,
            );
            const owner = await platform.accounts.service.createOperator(
              cliActor(org.id),
              { email: flags.ownerEmail, name: flags.ownerName, role: 'owner' },
              trx,
            );
            return { organization: org, owner: owner.user, oneTimePassword: owner.oneTimePassword };
          });
          print(
            flags,
            result,
            () =>
              `Organization "${result.organization.slug}" created.\nOwner ${result.owner.email}, one-time password (shown only now): ${result.oneTimePassword}`,
          );
        }),
      ),
    );

  addDataDir(admin.command('orgs').description('list organizations'))
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions) =>
        withPlatform(flags, async (platform) => {
          const orgs = await platform.accounts.store.listOrganizations();
          print(
            flags,
            orgs.map((o) => ({ id: o.id, slug: o.slug, name: o.name })),
            () => orgs.map((o) => `${o.slug}\t${o.name}\t${o.id}`).join('\n') || 'No organizations',
          );
        }),
      ),
    );

  userCommand(admin, 'create-user', 'create an operator; prints a one-time password they must change at first sign-in')
    .requiredOption('--role <role>', `one of ${OPERATOR_ROLES.join(', ')}`)
    .option('--name <name>', 'display name')
    .action(
      action((flags: UserFlags & { role: string; name?: string }) =>
        withPlatform(flags, async (platform) => {
          if (!isOperatorRole(flags.role)) throw new ValidationError(`--role must be one of ${OPERATOR_ROLES.join(', ')}`);
          const actor = await actorForOrganization(platform, flags.org);
          const result = await platform.accounts.service.createOperator(actor, {
            email: flags.email,
            name: flags.name ?? flags.email.split('@')[0]!,
            role: flags.role,
          });
          print(
            flags,
            result,
            () => `Created ${result.user.email} (${result.user.role}).\nOne-time password (shown only now): ${result.oneTimePassword}`,
          );
        }),
      ),
    );

  userCommand(
    admin,
    'deprovision',
    'disable an operator who left (e.g. removed at the identity provider): their sessions and API keys end at once',
  ).action(
    action((flags: UserFlags) =>
      withPlatform(flags, async (platform) => {
        const { actor, user } = await userByEmail(platform, flags);
        const view = await platform.accounts.service.updateUser(actor, user.id, { status: 'disabled' });
        print(flags, view, () => `Deprovisioned ${view.email}: disabled, sessions and API keys ended`);
      }),
    ),
  );

  userCommand(admin, 'unlock', 'lift a sign-in lockout').action(
    action((flags: UserFlags) =>
      withPlatform(flags, async (platform) => {
        const { actor, user } = await userByEmail(platform, flags);
        const view = await platform.accounts.service.unlock(actor, user.id);
        print(flags, view, () => `Unlocked ${view.email}`);
      }),
    ),
  );

  userCommand(admin, 'reset-mfa', "remove a user's second factor (lost device) and end their sessions").action(
    action((flags: UserFlags) =>
      withPlatform(flags, async (platform) => {
        const { actor, user } = await userByEmail(platform, flags);
        const view = await platform.accounts.service.resetMfa(actor, user.id);
        print(flags, view, () => `MFA removed for ${view.email}; they enrol again at next sign-in`);
      }),
    ),
  );

  userCommand(admin, 'sessions', "list a user's active sessions")
    .option('--revoke-all', 'revoke every one of them')
    .action(
      action((flags: UserFlags & { revokeAll?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const { actor, user } = await userByEmail(platform, flags);
          if (flags.revokeAll) {
            const revoked = await platform.db.transaction().execute(async (trx) => {
              const n = await platform.accounts.sessions.revokeAll(user.id, trx);
              await platform.audit.record(
                {
                  organizationId: actor.organizationId,
                  actor: { type: 'cli', id: actor.userId },
                  action: 'session.revoked_all',
                  target: { type: 'user', id: user.id },
                  details: { count: n },
                },
                trx,
              );
              return n;
            });
            print(flags, { revoked }, () => `Revoked ${revoked} session(s) of ${user.email}`);
            return;
          }
          const sessions = await platform.accounts.sessions.list(user.id, null);
          print(
            flags,
            sessions,
            () =>
              sessions
                .map((s) => `${s.id}\t${s.transport}\t${s.scope}\t${s.sourceIp}\tlast seen ${s.lastSeenAt}\texpires ${s.expiresAt}`)
                .join('\n') || 'No active sessions',
          );
        }),
      ),
    );

  addDataDir(
    admin
      .command('smtp-password')
      .description('store the SMTP password in DIR/config.json, sealed under the master key (read from standard input)'),
  )
    .option('--from-env <variable>', 'read it from this environment variable instead of standard input')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { fromEnv?: string }) =>
        withPlatform(flags, async (platform) => {
          const password = (flags.fromEnv ? process.env[flags.fromEnv] : await readStdin())?.replace(/\r?\n$/, '');
          if (!password)
            throw new ValidationError(flags.fromEnv ? `${flags.fromEnv} is not set or empty` : 'Give the SMTP password on standard input', {
              field: 'password',
            });
          storeConfigSecret(platform.config.dataDir, platform.box, 'smtp.password', password);
          await platform.audit.record({
            organizationId: null,
            actor: { type: 'cli', id: process.env.USER ?? 'cli' },
            action: 'config.secret_stored',
            target: { type: 'config', id: 'smtp.password' },
          });
          print(flags, { stored: 'smtp.password' }, () => 'SMTP password stored sealed in config.json; restart the nodes to use it');
        }),
      ),
    );

  addDataDir(
    admin
      .command('metrics-token')
      .description('create the bearer token Prometheus presents to read /metrics (prints it once; DIR/config.json keeps only its hash)'),
  )
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions) =>
        withPlatform(flags, async (platform) => {
          const { token, tokenHash } = newScrapeToken();
          storeConfigValue(platform.config.dataDir, 'metrics.tokenHash', tokenHash);
          await platform.audit.record({
            organizationId: null,
            actor: { type: 'cli', id: process.env.USER ?? 'cli' },
            action: 'config.secret_stored',
            target: { type: 'config', id: 'metrics.tokenHash' },
          });
          print(
            flags,
            { token },
            () =>
              `Scrape token (shown only now; it replaces any previous one once the nodes restart):\n${token}\nPrometheus: authorization: { type: Bearer, credentials: <token> } in the scrape config of /metrics`,
          );
        }),
      ),
    );

  addDataDir(admin.command('outbox').description('list emails waiting in the outbox (when no SMTP server is configured)'))
    .option('--kind <kind>', 'only this kind (password_reset, email_verify, invitation, account_locked, …)')
    .option('--to <email>', 'only mail to this address')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: GlobalOptions & { kind?: string; to?: string }) => {
        const config = await configFor(flags);
        const messages = new OutboxMailer(outboxDir(config.dataDir))
          .list()
          .filter((m) => (!flags.kind || m.kind === flags.kind) && (!flags.to || m.to === flags.to.toLowerCase()));
        print(
          flags,
          messages,
          () =>
            messages.map((m) => `--- ${m.createdAt} ${m.kind} to ${m.to}\nSubject: ${m.subject}\n\n${m.text}\n`).join('\n') ||
            'The outbox is empty',
        );
      }),
    );
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new ValidationError('Pipe the SMTP password on standard input (it is not echoed or taken from the command line)', {
      field: 'password',
    });
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
