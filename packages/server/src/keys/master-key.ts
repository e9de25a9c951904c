/**
 * The master key every secret at rest is wrapped under (see custody.ts). It comes from
 * BULWARK_MASTER_KEY (base64, 32 bytes) or from DIR/keys/master.key (mode 0600), created by
 * `bulwark init`. While `bulwark keys rotate-master` runs, DIR/keys/master.key.previous holds the
 * key being replaced, and the box loaded from the files opens values under either.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KeyCustodyError, SecretBox, SoftwareKek, type KeyRingSource } from './custody.js';

export { KeyCustodyError, SecretBox } from './custody.js';

export function masterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.key');
}

export function previousMasterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.key.previous');
}

/** Writes a key file (0600) through a temporary file and a rename, so a crash never leaves half a key. */
export function writeKeyFileAtomic(path: string, key: Buffer): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, key.toString('base64') + '\n', { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

/** Creates DIR/keys/master.key (0600) unless it exists; returns whether it was created. */
export function createMasterKeyFile(dataDir: string): boolean {
  const path = masterKeyPath(dataDir);
  if (existsSync(path)) return false;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return true;
}

export function readKeyFile(path: string): Buffer {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyCustodyError(`${path} is readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`, 'keys.master_key_exposed');
  }
  return Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
}

function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return '-';
  }
}

/** The key files of a data directory as a key ring: master.key, then master.key.previous if present. */
export function masterKeyFiles(dataDir: string): KeyRingSource {
  const current = masterKeyPath(dataDir);
  const previous = previousMasterKeyPath(dataDir);
  return {
    stamp: () => `${fileStamp(current)}|${fileStamp(previous)}`,
    load: () => {
      const keys = [new SoftwareKek(readKeyFile(current))];
      if (existsSync(previous)) keys.push(new SoftwareKek(readKeyFile(previous)));
      return keys;
    },
  };
}

export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
  const fromEnv = env.BULWARK_MASTER_KEY;
  if (fromEnv) return new SecretBox(Buffer.from(fromEnv, 'base64'));
  const path = masterKeyPath(dataDir);
  if (!existsSync(path)) {
    throw new KeyCustodyError(`No master key: ${path} does not exist and BULWARK_MASTER_KEY is not set. Run \`bulwark init\` first.`, 'keys.master_key_missing');
  }
  return new SecretBox(masterKeyFiles(dataDir));
}
