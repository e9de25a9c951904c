/**
 * `bulwark init`, `bulwark serve`, `bulwark start` (init if needed, then serve) and `bulwark migrate`.
 * Serving prints a few lines for a person on standard output and logs on standard error.
 */
import cluster from 'node:cluster';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { pino } from 'pino';
import { DEFAULT_INIT, initialize, isInitialized, type InitResult } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { judgePasswordsOffThread, stopJudgingOffThread } from '../accounts/passwords.js';
import { openDatabase } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { workerCount, type Config } from '../ops/config.js';
import { action, addDataDir, configFor, print, type GlobalOptions } from './context.js';
import { logDestination } from './log-output.js';
import { superviseWorkers, workerSlot, type ListeningMessage } from '../runner/workers.js';

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
  workers?: string;
}

const WORKERS_OPTION = '--workers <n|auto>';
const WORKERS_HELP =
  'processes serving the node, sharing its ports (default 1; auto: one per core; more than 1 needs PostgreSQL and Redis; env BULWARK_NODE_WORKERS)';

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
  const overrides: Record<string, unknown> = Object.keys(http).length ? { http } : {};
  // A number stays a number and anything else a word, so that validation names what is wrong with it.
  if (flags.workers !== undefined) overrides.node = { workers: /^\d+$/.test(flags.workers) ? Number(flags.workers) : flags.workers };
  return overrides;
}

/** Applies pending migrations once, before several workers would race to do it. */
async function migrate(config: Config) {
  const handle = openDatabase({ url: config.database.url, dataDir: config.dataDir, poolSize: 1 });
  try {
    return await migrateToLatest(handle);
  } finally {
    await handle.close();
  }
}

/** What a person reads once the node listens. */
function listeningText(url: string, config: Config, mqttPort: number | null, init?: InitResult): string {
  const lines = [`Bulwark API listening on ${url} (CA: ${config.dataDir}/pki/ca.pem)`];
  if (mqttPort !== null) lines.push(`Bulwark device broker (MQTT over mutual TLS) listening on mqtts://${config.mqtt.host}:${mqttPort}`);
  if (init?.owner) lines.push('', firstStartText(init, url));
  return lines.join('\n') + '\n';
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
 * Runs the node (with several workers, their primary: superviseNode). Standard output gets only the
 * text a person reads, written once the node listens; logs go to standard error (log-output.ts).
 * `init` is the report of a first start made just before: its one-time password is printed with the
 * address, or alone if the node cannot start.
 */
async function serve(flags: ServeFlags, init?: InitResult): Promise<number> {
  // The IPC channel to the primary would keep a worker's process alive once it stopped or failed.
  if (cluster.isWorker) return serveNode(flags, init).finally(() => process.channel?.unref());
  return serveNode(flags, init);
}

async function serveNode(flags: ServeFlags, init?: InitResult): Promise<number> {
  const config = await configFor(flags, serveOverrides(flags));
  const workers = workerCount(config);
  if (workers > 1 && cluster.isPrimary) return superviseNode(flags, config, workers, init);
  const failed = (error: unknown): never => {
    if (init) reportInit(flags, init);
    throw error;
  };
  // The HTTP and MQTT servers (Fastify, every route, the broker) load only here: `init`, `migrate`
  // and `--help` do not pay for them.
  const { startServer } = await import('../runner/server.js');
  const platform = await openPlatform(config).catch(failed);
  const slot = workerSlot();
  // A node that cannot listen (port taken, bad certificate) closes its database at once: an open
  // PostgreSQL pool would otherwise keep the failed command alive until its idle timeout.
  const server = await startServer(platform, {
    logStream: logDestination(),
    ...(slot ? { worker: slot } : {}),
  }).catch(async (error: unknown) => {
    await platform.close();
    return failed(error);
  });
  const mqttPort = server.mqtt ? server.mqtt.port : null;
  // A worker reports to the primary, which prints once for the node.
  if (slot) {
    const listening: ListeningMessage = {
      bulwark: 'listening',
      url: server.url,
      mqtt: mqttPort === null ? null : { host: config.mqtt.host, port: mqttPort },
    };
    if (process.connected) process.send!(listening);
  } else process.stdout.write(listeningText(server.url, config, mqttPort, init));
  // Passwords are judged in a worker thread, its dictionaries built now rather than on the first
  // sign-up or password change (which would wait a second for them) and kept out of the main heap.
  void judgePasswordsOffThread();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      if (!slot) process.stdout.write('Shutting down…\n');
      server.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await stopJudgingOffThread();
  return 0;
}

/**
 * The primary of a node with several workers (runner/workers.ts): migrations once, then the workers,
 * restarted when they exit; it prints the start-up text once every worker listens.
 */
async function superviseNode(flags: ServeFlags, config: Config, count: number, init?: InitResult): Promise<number> {
  await migrate(config).catch((error: unknown) => {
    if (init) reportInit(flags, init);
    throw error;
  });
  const log = pino({ level: config.log.level, base: { pid: process.pid, hostname: hostname(), role: 'primary' } }, logDestination());
  log.info({ workers: count }, 'starting the workers');
  return superviseWorkers({
    count,
    log,
    // Each worker drains for at most http.shutdownGraceMs, then closes its storage.
    stopTimeoutMs: config.http.shutdownGraceMs + 30_000,
    onListening: (message) =>
      process.stdout.write(
        listeningText(message.url, config, message.mqtt?.port ?? null, init) + `Serving with ${count} worker processes.\n`,
      ),
  });
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
    .option(WORKERS_OPTION, WORKERS_HELP)
    // Not action(serve): commander passes the command as the second argument, which serve would take for an init report.
    .action(action((flags: ServeFlags) => serve(flags)));

  addInitOptions(addDataDir(program.command('start').description('initialize the data directory if needed, then serve')))
    .option('--host <host>', 'address to listen on')
    .option('--port <port>', 'HTTPS API port')
    .option(WORKERS_OPTION, WORKERS_HELP)
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
        const report = await migrate(config);
        print(flags, report, () => (report.applied.length ? `Applied: ${report.applied.join(', ')}` : 'Database is up to date'));
      }),
    );
}
