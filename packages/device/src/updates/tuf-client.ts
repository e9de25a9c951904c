/**
 * `bulwark-agent tuf-client`: the client command line of the public TUF conformance suite
 * (theupdateframework/tuf-conformance, CLIENT-CLI.md), run over the agent's own image repository
 * verification (repository.ts: the same tuf-js Updater, limits, delegator check and local
 * metadata store) and its own download (download.ts: signed length, every signed hash). Only the
 * transport differs: the suite's repository is plain HTTP without device certificates.
 *
 *   bulwark-agent tuf-client --metadata-dir DIR init ROOT
 *   bulwark-agent tuf-client --metadata-dir DIR --metadata-url URL refresh
 *   bulwark-agent tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH [--target-name PATH…]
 *                            --target-base-url URL --target-dir DIR download
 *
 * `--ca FILE` (not in the suite's interface) trusts that CA for an https:// repository.
 * Exit codes: 0 done, 1 refused or failed (for download: at the first target that fails), 2 bad arguments.
 */
import { createReadStream, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TargetFile } from '@tufjs/models';
import { DeviceError } from '../errors.js';
import { downloadImage } from './download.js';
import { writeDurably } from './durable.js';
import { TargetUnknownError } from './errors.js';
import { publicGet, type HttpGet } from './https.js';
import { checkRoot } from './provision.js';
import { ImageRepository } from './repository.js';

const USAGE = `Usage (the TUF conformance suite's client interface):
  bulwark-agent tuf-client --metadata-dir DIR init ROOT
  bulwark-agent tuf-client --metadata-dir DIR --metadata-url URL refresh
  bulwark-agent tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH [--target-name PATH…] --target-base-url URL --target-dir DIR download
  --ca FILE   trust this CA for an https:// repository`;

const OPTIONS = {
  'metadata-dir': { type: 'string' },
  'metadata-url': { type: 'string' },
  'target-name': { type: 'string', multiple: true },
  'target-base-url': { type: 'string' },
  'target-dir': { type: 'string' },
  ca: { type: 'string' },
} as const;

class UsageError extends Error {}

export async function tufClientMain(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let run: () => Promise<string>;
  try {
    run = command(argv);
  } catch (error) {
    err.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    out.write(`${await run()}\n`);
    return 0;
  } catch (error) {
    const code = error instanceof DeviceError ? `${error.code}: ` : '';
    err.write(`bulwark-agent tuf-client: ${code}${(error as Error).message}\n`);
    return 1;
  }
}

/** Parses the arguments into the work to do (throws UsageError for bad arguments). */
function command(argv: string[]): () => Promise<string> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const need = (name: keyof typeof OPTIONS): string => {
    const value = values[name];
    if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
    return value;
  };
  const metadataDir = need('metadata-dir');
  const get = publicGet(values.ca === undefined ? undefined : readFileSync(values.ca, 'utf8'));
  const [verb, ...rest] = positionals;
  if (verb === 'init' && rest.length === 1) return async () => init(metadataDir, rest[0]!);
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  if (verb === 'refresh') {
    const options = { metadataBaseUrl: need('metadata-url'), metadataDir, get };
    return async () => {
      await new ImageRepository(options).refresh();
      return `refreshed ${metadataDir}`;
    };
  }
  if (verb === 'download') {
    const names = values['target-name'] ?? [];
    if (names.length === 0) throw new UsageError('--target-name is required');
    const options = { metadataBaseUrl: need('metadata-url'), targetBaseUrl: need('target-base-url'), metadataDir, get };
    const targetDir = need('target-dir');
    return async () => download(new ImageRepository(options), get, names, targetDir);
  }
  throw new UsageError(`unknown command ${verb ?? '(none)'}: expected init ROOT, refresh or download`);
}

/** Trusts the given root (checked to be signed by its own threshold, as setup checks a device's). */
function init(metadataDir: string, rootFile: string): string {
  const bytes = readFileSync(rootFile);
  checkRoot(bytes, 'trusted root');
  writeDurably(join(metadataDir, 'root.json'), bytes);
  return `trusting ${rootFile} in ${metadataDir}`;
}

/** Downloads each target in order with one repository (one refresh), keeping verified copies already there. */
async function download(repository: ImageRepository, get: HttpGet, names: string[], targetDir: string): Promise<string> {
  const done: string[] = [];
  for (const name of names) {
    const signed = await repository.target(name);
    if (!signed) throw new TargetUnknownError(name);
    const path = join(targetDir, encodeURIComponent(signed.file.path));
    if (await holds(path, signed.file)) {
      done.push(`${name} (cached)`);
      continue;
    }
    const partial = `${path}.partial`;
    rmSync(partial, { force: true });
    try {
      await downloadImage({
        url: repository.targetUrl(signed.file),
        get,
        path: partial,
        length: signed.file.length,
        hashes: signed.file.hashes,
      });
      renameSync(partial, path);
    } finally {
      rmSync(partial, { force: true });
    }
    done.push(name);
  }
  return `downloaded ${done.join(', ')}`;
}

/** Whether `path` already holds the signed bytes (length and every hash). */
async function holds(path: string, file: TargetFile): Promise<boolean> {
  if (!existsSync(path)) return false;
  try {
    await file.verify(createReadStream(path));
    return true;
  } catch {
    return false;
  }
}
