/**
 * `bulwark backup create`: an online, consistent backup of a deployment while devices stay
 * connected and telemetry flows. The database is copied first (one consistent moment, see
 * storage/snapshot.ts), then the data directory's files: a blob is written before the row that
 * names it, so every blob the copied database names is in the archive. The archive is a tar of
 * `database/…`, `data/…`, `manifest.json` and `manifest.sig`, encrypted (envelope.ts) and written
 * through a temporary file and a rename: a backup that fails leaves no partial archive behind.
 * A backup killed outright (SIGKILL, power loss) leaves its temporary file and staging directory,
 * never a file under the archive's name; the next backup to the same place deletes them.
 */
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { NotFoundError } from '../../errors.js';
import type { SecretBox } from '../../keys/custody.js';
import type { Pkcs11Token } from '../../keys/pkcs11.js';
import { masterKeyOnToken, masterKeyPath, readTokenKeyLabel, tokenMasterKeyPath } from '../../keys/master-key.js';
import { caKeyLocation, openCaKey, pkiPaths } from '../../pki/ca.js';
import type { Engine } from '../../storage/database.js';
import { snapshotPostgres, snapshotSqlite, type Snapshot } from '../../storage/snapshot.js';
import type { Config } from '../config.js';
import { DATA_PREFIX, dataFiles, POSTGRES_ENTRY, SQLITE_ENTRY } from './data-files.js';
import { EncryptStream, encodeHeader, newEnvelope, type BackupKeySource } from './envelope.js';
import { certificateFingerprint, MANIFEST_ENTRY, SIGNATURE_ENTRY, signManifest, type Manifest, type ManifestEntry } from './manifest.js';

export interface DeploymentAccess {
  config: Config;
  box: SecretBox;
  /** The configured PKCS#11 token, when CA keys live there. */
  token: (() => Pkcs11Token) | null;
}

export interface BackupResult {
  file: string;
  bytes: number;
  deployment: string;
  engine: Engine;
  entries: number;
  tables: number;
  rows: number;
  /** What the archive does not hold and a restore needs: keep each apart from the data and the backups. */
  keepApart: string[];
  seconds: number;
}

/**
 * Deletes what backups to `out` that were killed before they finished left beside it: the
 * temporary archive `OUT.tmp-PID` and the staging directory `.bulwark-backup-PID-…` of a process
 * that no longer runs. A process still running (another backup) keeps its files.
 */
function removeLeftovers(out: string): string[] {
  const dir = dirname(out);
  const temporary = `${basename(out)}.tmp-`;
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const owner = name.startsWith(temporary) ? /^\d+$/.exec(name.slice(temporary.length))?.[0] : /^\.bulwark-backup-(\d+)-/.exec(name)?.[1];
    if (!owner || Number(owner) === process.pid || running(Number(owner))) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The secrets a restore of this data directory needs that no backup carries. */
export function keptApart(dataDir: string): string[] {
  const paths = pkiPaths(dataDir);
  const apart: string[] = [];
  if (masterKeyOnToken(dataDir)) {
    apart.push(`the PKCS#11 token holding the master key (key label "${readTokenKeyLabel(tokenMasterKeyPath(dataDir))}"), or its backup`);
  } else if (existsSync(masterKeyPath(dataDir))) {
    apart.push(`the master key file ${masterKeyPath(dataDir)}`);
  } else {
    apart.push('the master key in BULWARK_MASTER_KEY');
  }
  for (const name of ['ca', 'device-ca', 'server-ca'] as const) {
    const where = caKeyLocation(paths.dir, name);
    if (where?.location === 'pkcs11') apart.push(`the PKCS#11 token holding the ${name} key (label "${where.label}"), or its backup`);
  }
  apart.push('the backup key file or passphrase');
  return apart;
}

export async function createBackup(
  access: DeploymentAccess,
  options: { out: string; key: BackupKeySource; now?: Date },
): Promise<BackupResult> {
  const started = performance.now();
  const { config } = access;
  const out = resolve(options.out);
  const paths = pkiPaths(config.dataDir);
  const rootPem = readIfExists(paths.caCert, 'the deployment root CA certificate (run bulwark init first)');
  const deployment = certificateFingerprint(rootPem);
  const signer = await openCaKey(paths.dir, 'server-ca', { box: access.box, token: access.token });
  if (!signer) throw new NotFoundError('The server issuing CA key, which signs backups');
  const now = options.now ?? new Date();
  const { header, key } = newEnvelope(options.key, deployment, now);

  removeLeftovers(out);
  const staging = mkdtempSync(join(dirname(out), `.bulwark-backup-${process.pid}-`));
  const temporary = `${out}.tmp-${process.pid}`;
  try {
    const engine = config.database.url === 'sqlite' || config.database.url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
    const databaseEntry = engine === 'sqlite' ? SQLITE_ENTRY : POSTGRES_ENTRY;
    const databaseCopy = join(staging, engine === 'sqlite' ? 'bulwark.db' : 'dump.pgc');
    const snapshot: Snapshot =
      engine === 'sqlite' ? snapshotSqlite(sqliteFile(config), databaseCopy) : await snapshotPostgres(config.database.url, databaseCopy);
    const files = dataFiles(config.dataDir, [out, temporary, staging]);

    const pack = tar.pack();
    const output = createWriteStream(temporary, { mode: 0o600 });
    output.write(encodeHeader(header));
    const written = pipeline(pack, new EncryptStream(key, header), output);
    const entries: ManifestEntry[] = [await addFile(pack, databaseEntry, databaseCopy)];
    for (const file of files) entries.push(await addFile(pack, DATA_PREFIX + file.path, file.absolute));
    const manifest: Manifest = {
      format: 'bulwark-backup-manifest/1',
      created: now.toISOString(),
      deployment,
      engine,
      database: databaseEntry,
      migration: snapshot.migration,
      entries,
      tables: snapshot.tables,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    const signature = await signManifest(manifestBytes, signer, readFileSync(paths.serverCaCert, 'utf8'));
    await addBuffer(pack, MANIFEST_ENTRY, manifestBytes);
    await addBuffer(pack, SIGNATURE_ENTRY, Buffer.from(JSON.stringify(signature, null, 2) + '\n'));
    pack.finalize();
    await written;
    renameSync(temporary, out);
    const rows = Object.values(snapshot.tables).reduce((sum, table) => sum + table.rows, 0);
    return {
      file: out,
      bytes: statSync(out).size,
      deployment,
      engine,
      entries: entries.length,
      tables: Object.keys(snapshot.tables).length,
      rows,
      keepApart: keptApart(config.dataDir),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(temporary, { force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

export function sqliteFile(config: Config): string {
  return config.database.url === 'sqlite' ? join(config.dataDir, 'bulwark.db') : config.database.url.replace(/^sqlite:/, '');
}

function readIfExists(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new NotFoundError(what);
  }
}

/** Streams a file into the archive, hashing it on the way; the size is the one taken before reading (files grow: the outbox). */
async function addFile(pack: tar.Pack, name: string, path: string): Promise<ManifestEntry> {
  const bytes = statSync(path).size;
  const hash = createHash('sha256');
  if (bytes === 0) {
    await addBuffer(pack, name, Buffer.alloc(0));
    return { name, bytes, sha256: hash.digest('hex') };
  }
  const source = createReadStream(path, { start: 0, end: bytes - 1 });
  source.on('data', (chunk) => hash.update(chunk));
  await pipeline(source, pack.entry({ name, size: bytes, mode: 0o600 }));
  return { name, bytes, sha256: hash.digest('hex') };
}

async function addBuffer(pack: tar.Pack, name: string, content: Buffer): Promise<void> {
  await new Promise<void>((done, fail) =>
    pack.entry({ name, size: content.length, mode: 0o600 }, content, (error) => (error ? fail(error) : done())),
  );
}
