/**
 * Which files of a data directory a backup carries, and the names they have inside the archive.
 * Everything is carried (PKI certificates and sealed keys, sealed derivation secrets, the blob
 * store, config.json, the outbox) except the live SQLite files (the backup carries a consistent
 * copy instead), temporary files, and the master key: it opens every sealed secret, so it is kept
 * apart from the backups (docs/operations.md says where).
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export const DATA_PREFIX = 'data/';
export const SQLITE_ENTRY = 'database/bulwark.db';
export const POSTGRES_ENTRY = 'database/dump.pgc';

const SKIPPED = [
  /^bulwark\.db(-wal|-shm|-journal)?$/,
  /^keys\/master\.key(\.previous)?$/,
  /\.tmp-\d+$/,
  /(^|\/)\.bulwark-(backup|restore)-/,
];

export interface DataFile {
  /** Path inside the data directory, with `/` separators. */
  path: string;
  absolute: string;
  bytes: number;
}

/** The regular files of `dataDir` a backup carries, in a stable order. */
export function dataFiles(dataDir: string, exclude: string[] = []): DataFile[] {
  const files: DataFile[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const absolute = join(dir, name);
      if (exclude.includes(absolute)) continue;
      const stat = statSync(absolute, { throwIfNoEntry: false });
      if (!stat) continue;
      const path = relative(dataDir, absolute).split(sep).join('/');
      if (SKIPPED.some((pattern) => pattern.test(path))) continue;
      if (stat.isDirectory()) walk(absolute);
      else if (stat.isFile()) files.push({ path, absolute, bytes: stat.size });
    }
  };
  walk(dataDir);
  return files;
}

/** Whether an entry name from an archive is one restore may write: no absolute path, no `..`, no odd characters. */
export function safeEntryName(name: string): boolean {
  if (name === 'manifest.json' || name === 'manifest.sig' || name === SQLITE_ENTRY || name === POSTGRES_ENTRY) return true;
  if (!name.startsWith(DATA_PREFIX)) return false;
  const parts = name.slice(DATA_PREFIX.length).split('/');
  return parts.every((part) => part !== '' && part !== '.' && part !== '..' && /^[A-Za-z0-9._@+-]{1,200}$/.test(part)) && parts.length <= 8;
}
