/**
 * `bulwark init`, `bulwark serve`, `bulwark start` (init if needed, then serve) and `bulwark migrate`.
 * Serving prints a few lines for a person on standard output and logs on standard error.
 */
import type { Command } from 'commander';
import { DEFAULT_INIT, initialize, isInitialized, type InitResult } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { loadPasswordDictionaries } from '../accounts/passwords.js';
import { openDatabase } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { action, addDataDir, configFor, print, type GlobalOptions } from './context.js';
import { logDestination } from './log-output.js';

interface InitFlags extends GlobalOptions {
  org: string;
  orgName: string;
  ownerEmail: string;
  ownerName: string;
  hsm?: boolean;
  hsmMasterKey?: boolean;
}

interface ServeFlags extends GlobalOptions {
  host?: string;
  port?: string;
}

function addInitOptions(command: Command): Command {
  return command
    .option('--org <slug>', 'slug of the first organization', DEFAULT_INIT.organizationSlug)
    .option('--org-name <name>', 'display name of the first organization', DEFAULT_INIT.organizationName)
    .option('--owner-email <email>', "the first owner's email (their sign-in name)", DEFAULT_INIT.ownerEmail)
    .option('--owner-name <name>', "the first owner's name", DEFAULT_INIT.ownerName);
}

function reportInit(options: GlobalOptions, result: InitResult): void {
  print(options, result, () => {
    const created =
      result.masterKey === 'hsm'
        ? ' (master key generated on the PKCS#11 token; no key file written: back up the token)'
        : ' (master key created: keys/master.key, mode 0600; back it up offline)';
    const lines = [`Data directory: ${result.dataDir}${result.masterKeyCreated ? created : ''}`];
    lines.push(`CA certificate for clients: ${result.caCertPath}`);
    if (result.pkiCreated) {
      lines.push(
        result.caKeys === 'hsm'
          ? 'CA keys (root, device and server issuing CAs) were generated on the PKCS#11 token; the data directory holds only their labels.'
          : 'The root CA key is sealed in the data directory. To move the root offline: bulwark pki export-root --out ROOT_DIR (then carry ROOT_DIR to an offline machine; see docs/operations.md).',
      );
    }
    if (result.owner) {
      lines.push('', `Organization "${result.organization.slug}" created with owner ${result.owner.email}.`);
      lines.push(`One-time password (shown only now; you must change it at first sign-in): ${result.owner.oneTimePassword}`);
    } else {
      lines.push(`Already initialized (organization "${result.organization.slug}"); nothing was replaced.`);
    }
    return lines.join('\n');
  });
}

function serveOverrides(flags: ServeFlags): Record<string, unknown> {
  const http: Record<string, unknown> = {};
  if (flags.host) http.host = flags.host;
  if (flags.port) {
    const port = Number(flags.port);
    http.port = Number.isInteger(port) ? port : flags.port;
  }
  return Object.keys(http).length ? { http } : {};
}

/** What a person needs after the first start: where it runs, the one-time password, the CA, what to do next. */
function firstStartText(init: InitResult, url: string): string {
  const lines = [
    `Organization "${init.organization.slug}" created with owner ${init.owner!.email}.`,
    `One-time password (shown only now; you must change it at first sign-in): ${init.owner!.oneTimePassword}`,
  ];
  lines.push(`CA certificate for clients: ${init.caCertPath}`);
  if (init.masterKeyCreated && init.masterKey === 'data-dir')
    lines.push(`Master key: ${init.dataDir}/keys/master.key (back it up offline: without it the data cannot be read)`);
  lines.push(
    '',
    `Next: curl --cacert ${init.caCertPath} ${url}/readyz, then sign in as ${init.owner!.email} with the password above (POST /api/v1/auth/login; docs/operations.md).`,
  );
  return lines.join('\n');
}

/**
 * Runs the node. Standard output gets only the text a person reads, written once the node listens;
 * logs go to standard error (log-output.ts). `init` is the report of a first start made just before:
 * its one-time password is printed with the address, or alone if the node cannot start.
 */
async function serve(flags: ServeFlags, init?: InitResult): Promise<number> {
  const config = await configFor(flags, serveOverrides(flags));
  const failed = (error: unknown): never => {
    if (init) reportInit(flags, init);
    throw error;
  };
  // The HTTP and MQTT servers (Fastify, every route, the broker) load only here: `init`, `migrate`
  // and `--help` do not pay for them.
  const { startServer } = await import('../runner/server.js');
  const platform = await openPlatform(config).catch(failed);
  // Built now rather than on the first sign-up or password change, which would wait a second for it.
  loadPasswordDictionaries();
  // A node that cannot listen (port taken, bad certificate) closes its database at once: an open
  // PostgreSQL pool would otherwise keep the failed command alive until its idle timeout.
  const server = await startServer(platform, { logStream: logDestination() }).catch(async (error: unknown) => {
    await platform.close();
    return failed(error);
  });
  const lines = [`Bulwark API listening on ${server.url} (CA: ${config.dataDir}/pki/ca.pem)`];
  if (server.mqtt) lines.push(`Bulwark device broker (MQTT over mutual TLS) listening on mqtts://${config.mqtt.host}:${server.mqtt.port}`);
  if (init?.owner) lines.push('', firstStartText(init, server.url));
  process.stdout.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.stdout.write('Shutting down…\n');
      server.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

export function registerServeCommands(program: Command): void {
  addInitOptions(
    addDataDir(program.command('init').description('create the data directory, master key, CA, server certificate and first owner')),
  )
    .option('--hsm', 'generate the CA keys on the PKCS#11 token of keys.pkcs11 (refused when none is configured)')
    .option(
      '--hsm-master-key',
      'generate the master key on the PKCS#11 token of keys.pkcs11 (new data directories only; refused when none is configured)',
    )
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: InitFlags) => {
        const config = await configFor(flags);
        reportInit(
          flags,
          await initialize(config, {
            organizationSlug: flags.org,
            organizationName: flags.orgName,
            ownerEmail: flags.ownerEmail,
            ownerName: flags.ownerName,
            hsm: flags.hsm ?? false,
            hsmMasterKey: flags.hsmMasterKey ?? false,
          }),
        );
      }),
    );

  addDataDir(program.command('serve').description('run the platform (HTTPS API and MQTT device broker)'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1; env BULWARK_HTTP_HOST)')
    .option('--port <port>', 'HTTPS API port (default 8443; env BULWARK_HTTP_PORT)')
    .action(action(serve));

  addInitOptions(addDataDir(program.command('start').description('initialize the data directory if needed, then serve')))
    .option('--host <host>', 'address to listen on')
    .option('--port <port>', 'HTTPS API port')
    .action(
      action(async (flags: InitFlags & ServeFlags) => {
        const config = await configFor(flags, serveOverrides(flags));
        const init = (await isInitialized(config))
          ? undefined
          : await initialize(config, {
              organizationSlug: flags.org,
              organizationName: flags.orgName,
              ownerEmail: flags.ownerEmail,
              ownerName: flags.ownerName,
            });
        return serve(flags, init);
      }),
    );

  addDataDir(program.command('migrate').description('apply pending database migrations'))
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: GlobalOptions) => {
        const config = await configFor(flags);
        const handle = openDatabase({ url: config.database.url, dataDir: config.dataDir, poolSize: 1 });
        try {
          const report = await migrateToLatest(handle);
          print(flags, report, () => (report.applied.length ? `Applied: ${report.applied.join(', ')}` : 'Database is up to date'));
        } finally {
          await handle.close();
        }
      }),
    );
}
