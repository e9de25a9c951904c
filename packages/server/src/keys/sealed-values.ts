/**
 * Every file in the data directory holding a value sealed under the master key (the sealed
 * columns are in sealed-column-store.ts). Master-key rotation walks this list, so a new sealed
 * file is added here.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileDurably } from './durable-file.js';

export interface SealedFile {
  path: string;
  context: string;
}

/**
 * The sealed key files in DIR/pki. The convention (pki/ca.ts): `NAME.key.sealed` is sealed with
 * the context `pki:NAME`.
 */
export function sealedFiles(dataDir: string): SealedFile[] {
  const dir = join(dataDir, 'pki');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.key.sealed'))
    .sort()
    .map((name) => ({ path: join(dir, name), context: `pki:${name.slice(0, -'.key.sealed'.length)}` }));
}

export function readSealedFile(file: SealedFile): string {
  return readFileSync(file.path, 'utf8').trim();
}

/** Flushed temporary file and rename: a reader (or a crash) sees the old sealed key or the new one, never half of one. */
export function writeSealedFileAtomic(file: SealedFile, sealed: string): void {
  replaceFileDurably(file.path, sealed);
}
