/**
 * Crash-safe files for the agent's state: a file is replaced by writing a temporary file beside
 * it, flushing it, renaming it over the old one and flushing the directory, so after a power cut
 * the file holds either the old content or the new, never a mix or nothing.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Flushes a directory's entries (a rename is durable only once its directory is). */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeDurably(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

export function writeJsonDurably(path: string, value: unknown): void {
  writeDurably(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The parsed JSON file, or `fallback` when it does not exist. */
export function readJson<T>(path: string, fallback: T): T {
  if (!existsSync(path)) return fallback;
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
