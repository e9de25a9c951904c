/**
 * `bulwark restore` and `bulwark backup verify|drill`. Restore reads the whole archive into a
 * staging directory first: every segment authenticates (envelope.ts), the manifest's signature
 * chains to the root CA of the deployment the operator expects, every entry's size and SHA-256
 * match the manifest and no entry is missing or extra. Only then does it touch the target: a data
 * directory that must be empty (or absent) and, for PostgreSQL, a database that must hold no
 * table. The database goes in as one transaction (pg_restore --single-transaction) or one rename
 * (SQLite); if anything fails, what restore created is removed again.
 */
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ConflictError, IntegrityError, ValidationError } from '../../errors.js';
import { masterKeyPath } from '../../keys/master-key.js';
import { pkiPaths } from '../../pki/ca.js';
import { copySqliteIntoPostgres, type EngineCopyReport } from '../../storage/engine-copy.js';
import { postgresTableCount, restorePostgres } from '../../storage/snapshot.js';
import { DATA_PREFIX, POSTGRES_ENTRY, safeEntryName, SQLITE_ENTRY } from './data-files.js';
import { decodeHeader, DecryptStream, envelopeKey, splitHeader, type BackupKeySource, type EnvelopeHeader } from './envelope.js';
import { certificateFingerprint, MANIFEST_ENTRY, SIGNATURE_ENTRY, verifyManifest, type Manifest, type ManifestEntry } from './manifest.js';

/** At most this many entries in an archive (a crafted archive must not exhaust inodes before verification fails). */
const MAX_ENTRIES = 1_000_000;
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

export interface VerifyOptions {
  archive: string;
  key: BackupKeySource;
  /** The root CA fingerprint (SHA-256, hex) of the deployment this archive must belong to. */
  deployment?: string;
  /** Accept an archive of any deployment (moving to a new one): its fingerprint is still reported. */
  anyDeployment?: boolean;
}

export interface VerifiedArchive {
  header: EnvelopeHeader;
  manifest: Manifest;
  /** The staging directory holding every verified entry under its archive name; the caller removes it. */
  staging: string;
}

/** Reads the archive's header line without decrypting anything. */
export async function readHeader(archive: string): Promise<{ header: EnvelopeHeader; offset: number }> {
  const handle = await open(archive, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new ValidationError(`Cannot open ${archive}: ${error.message}`, {}, 'backup.invalid');
  });
  try {
    const start = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    const { line, rest } = splitHeader(start.subarray(0, bytesRead));
    return { header: decodeHeader(line.subarray(0, line.length - 1)), offset: rest };
  } finally {
    await handle.close();
  }
}

/** Decrypts, unpacks and verifies the whole archive into a staging directory beside `near`. */
export async function verifyArchive(options: VerifyOptions, near: string): Promise<VerifiedArchive> {
  const { header, offset } = await readHeader(options.archive);
  if (!options.anyDeployment) {
    if (!options.deployment) {
      throw new ValidationError(
        `Name the deployment this backup must belong to: --deployment ${header.deployment} (compare it with the fingerprint bulwark backup create printed), or pass --any-deployment`,
        { archiveDeployment: header.deployment },
        'backup.wrong_deployment',
      );
    }
    if (options.deployment.toLowerCase() !== header.deployment) {
      throw new ValidationError(
        `This backup belongs to deployment ${header.deployment}, not ${options.deployment}`,
        { archiveDeployment: header.deployment },
        'backup.wrong_deployment',
      );
    }
  }
  const key = envelopeKey(header, options.key);
  mkdirSync(dirname(near), { recursive: true });
  const staging = mkdtempSync(join(dirname(near), `.bulwark-restore-${basename(near)}-`));
  try {
    const found = await unpack(createReadStream(options.archive, { start: offset }), new DecryptStream(key, header), staging);
    const manifestBytes = readStaged(staging, found, MANIFEST_ENTRY);
    const signatureBytes = readStaged(staging, found, SIGNATURE_ENTRY);
    const rootPem = readStaged(staging, found, `${DATA_PREFIX}pki/ca.pem`).toString('utf8');
    const fingerprint = certificateFingerprint(rootPem);
    if (fingerprint !== header.deployment) {
      throw new IntegrityError('The archive’s root CA is not the deployment its header names', 'backup.signature_invalid');
    }
    const manifest = verifyManifest(manifestBytes, signatureBytes, rootPem);
    if (manifest.deployment !== header.deployment) {
      throw new IntegrityError('The manifest names another deployment than the archive header', 'backup.signature_invalid');
    }
    checkEntries(manifest, found);
    return { header, manifest, staging };
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

async function unpack(source: NodeJS.ReadableStream, decrypt: DecryptStream, staging: string): Promise<Map<string, ManifestEntry>> {
  const found = new Map<string, ManifestEntry>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const fail = (message: string): void => {
      stream.resume();
      extract.destroy(new ValidationError(message, {}, 'backup.invalid'));
    };
    if (header.type !== 'file') return fail(`The archive holds a ${header.type} entry (${header.name}): only files are restored`);
    if (!safeEntryName(header.name)) return fail(`The archive holds an entry outside the backup layout: ${JSON.stringify(header.name)}`);
    if (found.has(header.name)) return fail(`The archive holds ${header.name} twice`);
    if (found.size >= MAX_ENTRIES) return fail(`The archive holds more than ${MAX_ENTRIES} entries`);
    if ((header.name === MANIFEST_ENTRY || header.name === SIGNATURE_ENTRY) && (header.size ?? 0) > MAX_MANIFEST_BYTES) {
      return fail(`${header.name} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    const path = join(staging, header.name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: unknown) => {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    });
    pipeline(stream, createWriteStream(path, { mode: 0o600 }))
      .then(() => {
        found.set(header.name, { name: header.name, bytes, sha256: hash.digest('hex') });
        next();
      })
      .catch((error: Error) => extract.destroy(error));
  });
  await pipeline(source, decrypt, extract);
  return found;
}

function readStaged(staging: string, found: Map<string, ManifestEntry>, name: string): Buffer {
  if (!found.has(name)) throw new ValidationError(`The archive holds no ${name}`, {}, 'backup.invalid');
  return readFileSync(join(staging, name));
}

function checkEntries(manifest: Manifest, found: Map<string, ManifestEntry>): void {
  const listed = new Map(manifest.entries.map((entry) => [entry.name, entry]));
  for (const [name, entry] of listed) {
    const got = found.get(name);
    if (!got) throw tamperedEntry(`${name} is listed in the manifest but missing`);
    if (got.bytes !== entry.bytes || got.sha256 !== entry.sha256) throw tamperedEntry(`${name} does not match its hash in the manifest`);
  }
  for (const name of found.keys()) {
    if (name !== MANIFEST_ENTRY && name !== SIGNATURE_ENTRY && !listed.has(name)) throw tamperedEntry(`${name} is not in the manifest`);
  }
  if (!listed.has(manifest.database) || (manifest.database !== SQLITE_ENTRY && manifest.database !== POSTGRES_ENTRY)) {
    throw tamperedEntry('the manifest names no database entry');
  }
}

const tamperedEntry = (why: string): ValidationError => new IntegrityError(`The backup does not hold together: ${why}`, 'backup.tampered');

export interface RestoreOptions extends VerifyOptions {
  /** The data directory to restore into: absent or empty. */
  dataDir: string;
  /** For a PostgreSQL backup: the empty database to restore into (its URL goes into the restored config.json). */
  databaseUrl?: string;
  /** A master key file to place in the restored data directory (otherwise BULWARK_MASTER_KEY or the token provides it). */
  masterKeyFile?: string;
}

export interface RestoreResult {
  dataDir: string;
  deployment: string;
  /** Where the database now is (a SQLite backup restored with --database moved to PostgreSQL). */
  engine: Manifest['engine'];
  /** Set when a SQLite backup was copied into PostgreSQL: what the copy checked, table by table. */
  copiedFrom?: 'sqlite';
  copied?: EngineCopyReport;
  databaseUrl: string;
  entries: number;
  tables: number;
  rows: number;
  created: string;
  /** Every table's row count and digest at backup time, as the signed manifest records them. */
  digests: Manifest['tables'];
  seconds: number;
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const target = resolve(options.dataDir);
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new ConflictError(
      `${target} is not empty: restore writes only into an empty or new data directory`,
      {},
      'backup.target_not_empty',
    );
  }
  const verified = await verifyArchive(options, target);
  const { manifest, staging } = verified;
  let createdTarget = false;
  try {
    // A SQLite backup restores into the data directory, or with --database into PostgreSQL (a move
    // to PostgreSQL: storage/engine-copy.ts); a PostgreSQL backup only into PostgreSQL.
    const intoPostgres = manifest.engine === 'postgres' || options.databaseUrl !== undefined;
    if (options.databaseUrl !== undefined && !options.databaseUrl.startsWith('postgres')) {
      throw new ValidationError('--database takes the postgres:// URL of an empty database', {}, 'backup.engine_mismatch');
    }
    if (manifest.engine === 'sqlite' && intoPostgres && !manifest.migration) {
      throw new ValidationError(
        'This SQLite backup does not say its schema version: it restores only into a data directory',
        {},
        'backup.engine_mismatch',
      );
    }
    if (intoPostgres) {
      if (!options.databaseUrl) {
        throw new ValidationError(
          'This is a PostgreSQL backup: name the empty database to restore into with --database postgres://…',
          {},
          'backup.engine_mismatch',
        );
      }
      if ((await postgresTableCount(options.databaseUrl)) > 0) {
        throw new ConflictError(
          'The target database holds tables: restore writes only into an empty database',
          {},
          'backup.target_not_empty',
        );
      }
    }
    if (existsSync(target) && readdirSync(target).length > 0) {
      throw new ConflictError(`${target} is no longer empty`, {}, 'backup.target_not_empty');
    }
    mkdirSync(target, { recursive: true, mode: 0o700 });
    createdTarget = true;
    for (const entry of manifest.entries) {
      if (!entry.name.startsWith(DATA_PREFIX)) continue;
      const destination = join(target, entry.name.slice(DATA_PREFIX.length));
      mkdirSync(dirname(destination), { recursive: true, mode: 0o700 });
      renameSync(join(staging, entry.name), destination);
    }
    const databaseUrl = intoPostgres ? options.databaseUrl! : 'sqlite';
    if (!intoPostgres) renameSync(join(staging, SQLITE_ENTRY), join(target, 'bulwark.db'));
    writeRestoredConfig(target, databaseUrl);
    if (options.masterKeyFile) {
      mkdirSync(dirname(masterKeyPath(target)), { recursive: true, mode: 0o700 });
      copyFileSync(options.masterKeyFile, masterKeyPath(target));
    }
    let copied: EngineCopyReport | undefined;
    if (manifest.engine === 'postgres') await restorePostgres(databaseUrl, join(staging, POSTGRES_ENTRY));
    else if (intoPostgres) copied = await copySqliteIntoPostgres(join(staging, SQLITE_ENTRY), databaseUrl, manifest.migration!);
    return {
      dataDir: target,
      deployment: manifest.deployment,
      engine: intoPostgres ? 'postgres' : 'sqlite',
      ...(copied ? { copiedFrom: 'sqlite' as const, copied } : {}),
      databaseUrl: intoPostgres ? redactUrl(databaseUrl) : 'sqlite',
      entries: manifest.entries.length,
      tables: Object.keys(manifest.tables).length,
      rows: Object.values(manifest.tables).reduce((sum, table) => sum + table.rows, 0),
      created: manifest.created,
      digests: manifest.tables,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    if (createdTarget) rmSync(target, { recursive: true, force: true });
    throw error;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The restored config.json names the database the data now lives in (the archive's names the old one). */
function writeRestoredConfig(target: string, databaseUrl: string): void {
  const file = join(target, 'config.json');
  const config = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const database = (config.database ?? {}) as Record<string, unknown>;
  config.database = { ...database, url: databaseUrl };
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** The deployment fingerprint of a data directory (its root CA). */
export function deploymentOf(dataDir: string): string {
  return certificateFingerprint(readFileSync(pkiPaths(dataDir).caCert, 'utf8'));
}
