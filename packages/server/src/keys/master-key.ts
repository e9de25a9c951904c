/**
 * The master key every secret at rest is wrapped under (see custody.ts). It comes from one of:
 *   - BULWARK_MASTER_KEY (base64, 32 bytes);
 *   - DIR/keys/master.key (mode 0600), created by `bulwark init`;
 *   - an AES-256 key on the PKCS#11 token of keys.pkcs11, created by `bulwark init --hsm-master-key`:
 *     DIR/keys/master.pkcs11 records only its label, and DIR/keys/derivation.sealed holds the secret
 *     purpose keys are derived from (sealed under that key: the token key's bytes are out of reach).
 * The data directory says which: once master.pkcs11 exists, the master key is on the token.
 * While `bulwark keys rotate-master` runs, DIR/keys/master.key.previous (or master.pkcs11.previous)
 * names the key being replaced, and the box loaded from the files opens values under either.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConflictError, ValidationError } from '../errors.js';
import { KeyCustodyError, SecretBox, SoftwareKek, type KeyRingSource } from './custody.js';
import { replaceFileDurably } from './durable-file.js';
import { pkcs11Options, TokenAccess, type Pkcs11Kek, type Pkcs11Settings, type Pkcs11Token } from './pkcs11.js';
import { readSealedFile, writeSealedFileAtomic, type SealedFile } from './sealed-values.js';

export { KeyCustodyError, SecretBox } from './custody.js';

export function masterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.key');
}

export function previousMasterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.key.previous');
}

/** Writes a key file (0600) through a flushed temporary file and a rename, so a crash never leaves half a key or none. */
export function writeKeyFileAtomic(path: string, key: Buffer): void {
  replaceFileDurably(path, key.toString('base64') + '\n');
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
    throw new KeyCustodyError(
      `${path} is readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`,
      'keys.master_key_exposed',
    );
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

export function tokenMasterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.pkcs11');
}

export function previousTokenMasterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.pkcs11.previous');
}

/** True when this data directory's master key is on the PKCS#11 token. */
export function masterKeyOnToken(dataDir: string): boolean {
  return existsSync(tokenMasterKeyPath(dataDir));
}

/** The secret purpose keys are derived from when the master key is on the token (a sealed file: rotation re-wraps it). */
export function derivationSecretFile(dataDir: string): SealedFile {
  return { path: join(dataDir, 'keys', 'derivation.sealed'), context: 'keys:derivation' };
}

/** The label of the token key a record (master.pkcs11 or master.pkcs11.previous) names. */
export function readTokenKeyLabel(path: string): string {
  let label: unknown;
  try {
    ({ label } = JSON.parse(readFileSync(path, 'utf8')) as { label?: unknown });
  } catch (error) {
    throw new KeyCustodyError(`${path} is not readable JSON: ${(error as Error).message}`, 'keys.master_key_invalid');
  }
  if (typeof label !== 'string' || !label) throw new KeyCustodyError(`${path} does not name a key label`, 'keys.master_key_invalid');
  return label;
}

/** Records a token key's label (0600, temporary file and rename). */
export function writeTokenKeyLabel(path: string, label: string): void {
  replaceFileDurably(path, JSON.stringify({ label }) + '\n');
}

/** A label for a new master key on the token; random, so a rotation never meets an older key's label. */
export function newTokenMasterKeyLabel(): string {
  return `bulwark-master-${randomBytes(6).toString('hex')}`;
}

/** The token KEK recorded under `label`, or an error saying the token in use is not the one that holds it. */
export function tokenKek(token: Pkcs11Token, label: string, recordedIn: string): Pkcs11Kek {
  if (!token.has('secret', label)) {
    throw new KeyCustodyError(
      `The master key "${label}" recorded in ${recordedIn} is not on the PKCS#11 token: keys.pkcs11 must name the token \`bulwark init --hsm-master-key\` used`,
      'keys.master_key_missing',
    );
  }
  return token.kek(label);
}

/**
 * Generates the master key on the token and records its label, with a fresh derivation secret
 * sealed under it; returns false when the data directory already has its master key there.
 */
export function createTokenMasterKey(dataDir: string, token: Pkcs11Token): boolean {
  if (masterKeyOnToken(dataDir)) return false;
  const label = newTokenMasterKeyLabel();
  const kek = token.generateKek(label);
  const box = new SecretBox({ stamp: () => label, load: () => [kek] });
  const derivation = derivationSecretFile(dataDir);
  mkdirSync(dirname(derivation.path), { recursive: true, mode: 0o700 });
  writeSealedFileAtomic(derivation, box.seal(randomBytes(32), derivation.context));
  // Written last: a crash before it leaves no record, and the next init starts again.
  writeTokenKeyLabel(tokenMasterKeyPath(dataDir), label);
  return true;
}

/** The key records of a data directory whose master key is on the token, as a key ring. */
export function tokenMasterKeyFiles(dataDir: string, token: () => Pkcs11Token): KeyRingSource {
  const current = tokenMasterKeyPath(dataDir);
  const previous = previousTokenMasterKeyPath(dataDir);
  const derivation = derivationSecretFile(dataDir);
  return {
    stamp: () => `${fileStamp(current)}|${fileStamp(previous)}`,
    load: () => {
      const keys = [tokenKek(token(), readTokenKeyLabel(current), current)];
      if (existsSync(previous)) keys.push(tokenKek(token(), readTokenKeyLabel(previous), previous));
      return keys;
    },
    derivationSecret: (box) => {
      if (!existsSync(derivation.path))
        throw new KeyCustodyError(
          `${derivation.path} is missing: the keys derived from the master key on the token (CSRF) cannot be made`,
          'keys.derivation_missing',
        );
      return box.open(readSealedFile(derivation), derivation.context);
    },
  };
}

export type MasterKeyLocation = 'data-dir' | 'env' | 'hsm';

export interface MasterKeySetup {
  /** `bulwark init --hsm-master-key`: generate the master key on the token. */
  onToken: boolean;
  /** BULWARK_MASTER_KEY is set (then no key file is written). */
  fromEnv: boolean;
  pkcs11?: Pkcs11Settings | undefined;
  env: NodeJS.ProcessEnv;
}

/** `bulwark init`'s step: makes the master key where asked unless the data directory has one. */
export function ensureMasterKey(dataDir: string, setup: MasterKeySetup): { created: boolean; location: MasterKeyLocation } {
  if (masterKeyOnToken(dataDir)) return { created: false, location: 'hsm' };
  if (!setup.onToken)
    return setup.fromEnv ? { created: false, location: 'env' } : { created: createMasterKeyFile(dataDir), location: 'data-dir' };
  if (!setup.pkcs11) {
    throw new ValidationError(
      '--hsm-master-key needs a PKCS#11 token: set keys.pkcs11.tokenLabel (BULWARK_KEYS_PKCS11_TOKEN_LABEL), optionally keys.pkcs11.module, and the PIN in BULWARK_PKCS11_PIN',
      {},
      'config.pkcs11_missing',
    );
  }
  if (setup.fromEnv)
    throw new ConflictError(
      'BULWARK_MASTER_KEY is set: unset it to generate the master key on the PKCS#11 token',
      undefined,
      'keys.master_key_conflict',
    );
  if (existsSync(masterKeyPath(dataDir))) {
    throw new ConflictError(
      `This data directory already has its master key in ${masterKeyPath(dataDir)}, and moving an existing master key onto the token is not built: --hsm-master-key is for a new data directory`,
      undefined,
      'keys.master_key_conflict',
    );
  }
  const settings = setup.pkcs11;
  const access = new TokenAccess(() => pkcs11Options(settings, setup.env));
  try {
    return { created: createTokenMasterKey(dataDir, access.get()), location: 'hsm' };
  } finally {
    access.close();
  }
}

/**
 * The master key of a data directory as a SecretBox. `token` reaches the configured PKCS#11 token
 * (platform.hsm); it is used only when the master key is there.
 */
export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env, token: (() => Pkcs11Token) | null = null): SecretBox {
  const fromEnv = env.BULWARK_MASTER_KEY;
  if (masterKeyOnToken(dataDir)) {
    const record = tokenMasterKeyPath(dataDir);
    if (fromEnv)
      throw new ConflictError(
        `The master key of this data directory is on the PKCS#11 token (${record}), yet BULWARK_MASTER_KEY is set: unset it`,
        undefined,
        'keys.master_key_conflict',
      );
    if (existsSync(masterKeyPath(dataDir))) {
      throw new ConflictError(
        `The master key of this data directory is on the PKCS#11 token (${record}), yet ${masterKeyPath(dataDir)} exists: nothing here is sealed under a key file; move it away`,
        undefined,
        'keys.master_key_conflict',
      );
    }
    if (!token) {
      throw new ValidationError(
        `The master key of this data directory is on a PKCS#11 token (${record}): set keys.pkcs11.tokenLabel (BULWARK_KEYS_PKCS11_TOKEN_LABEL), optionally keys.pkcs11.module, and the PIN in BULWARK_PKCS11_PIN`,
        {},
        'config.pkcs11_missing',
      );
    }
    return new SecretBox(tokenMasterKeyFiles(dataDir, token));
  }
  if (fromEnv) return new SecretBox(Buffer.from(fromEnv, 'base64'));
  const path = masterKeyPath(dataDir);
  if (!existsSync(path)) {
    throw new KeyCustodyError(
      `No master key: ${path} does not exist and BULWARK_MASTER_KEY is not set. Run \`bulwark init\` first.`,
      'keys.master_key_missing',
    );
  }
  return new SecretBox(masterKeyFiles(dataDir));
}
