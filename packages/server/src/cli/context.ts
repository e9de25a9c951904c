/**
 * What every CLI command shares: the --data-dir option, loading the validated config, opening
 * the platform, printing (human or --json), and exit codes that mean something:
 *   0 success · 1 unexpected failure · 2 invalid input or configuration · 3 verification failed
 *   4 not found · 5 conflict (already exists, state forbids it)
 */
import type { Command } from 'commander';
import { BulwarkError, ConflictError, IntegrityError, NotFoundError, ValidationError } from '../errors.js';
// Config and platform load only when a command opens them (main.ts): offline commands never do.
import type { Config } from '../ops/config.js';
import type { Platform } from '../platform.js';
import { cliActor, type Actor } from '../accounts/roles.js';

export const EXIT = { ok: 0, failure: 1, invalid: 2, verificationFailed: 3, notFound: 4, conflict: 5 } as const;

export interface GlobalOptions {
  dataDir: string;
  json?: boolean;
}

/** The flags of a command acting on one organization's resources. */
export interface OrgFlags extends GlobalOptions {
  org: string;
}

/** A subcommand on one organization (`--org SLUG`, with --data-dir and --json). */
export function orgCommand(parent: Command, name: string, description: string): Command {
  return addDataDir(parent.command(name).description(description))
    .requiredOption('--org <slug>', 'organization slug')
    .option('--json', 'machine-readable output');
}

/** The device named by serial, or failing that by platform ID. */
export async function deviceIdOf(platform: Platform, actor: Actor, ref: string): Promise<string> {
  try {
    return (await platform.devices.service.getBySerial(actor, ref)).id;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    return (await platform.devices.service.get(actor, ref)).id;
  }
}

/** The product named by its name, or failing that by its ID. */
export async function productIdOf(platform: Platform, actor: Actor, ref: string): Promise<string> {
  const product = (await platform.devices.service.listProducts(actor)).find((p) => p.id === ref || p.name === ref);
  if (!product) throw new NotFoundError(`Product "${ref}"`);
  return product.id;
}

export function addDataDir(command: Command): Command {
  return command.option('-d, --data-dir <dir>', 'data directory (env BULWARK_DATA_DIR)', process.env.BULWARK_DATA_DIR ?? './bulwark-data');
}

export async function configFor(options: GlobalOptions, overrides: Record<string, never> | Record<string, unknown> = {}): Promise<Config> {
  const { loadConfig } = await import('../ops/config.js');
  return loadConfig({ dataDir: options.dataDir, overrides: overrides as never });
}

export async function withPlatform<T>(options: GlobalOptions, fn: (platform: Platform) => Promise<T>): Promise<T> {
  const { openPlatform } = await import('../platform.js');
  const platform = await openPlatform(await configFor(options));
  try {
    return await fn(platform);
  } finally {
    await platform.close();
  }
}

/** The platform admin acting on one organization (by slug). */
export async function actorForOrganization(platform: Platform, slug: string): Promise<Actor> {
  const org = await platform.accounts.store.organizationBySlug(slug);
  if (!org) throw new NotFoundError(`Organization "${slug}"`);
  return cliActor(org.id);
}

export function print(options: { json?: boolean }, value: unknown, human: () => string): void {
  process.stdout.write(options.json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof IntegrityError) return EXIT.verificationFailed;
  if (error instanceof ValidationError) return EXIT.invalid;
  if (error instanceof NotFoundError) return EXIT.notFound;
  if (error instanceof ConflictError) return EXIT.conflict;
  return EXIT.failure;
}

/** Wraps a command action: known errors print their message and code; unexpected ones their stack. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = (await fn(...args)) ?? EXIT.ok;
    } catch (error) {
      if (error instanceof BulwarkError) {
        process.stderr.write(`error: ${error.message} [${error.code}]\n`);
      } else {
        process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
      }
      process.exitCode = exitCodeFor(error);
    }
  };
}
