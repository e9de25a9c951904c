/**
 * Private keys at rest under a passphrase: the one implementation behind every offline key file
 * Bulwark writes (the root CA's `root.key.p8`, the firmware root, targets and release keys).
 *
 * - Format: PKCS#8 EncryptedPrivateKeyInfo, PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 at
 *   KEY_ENCRYPTION.iterations and AES-256-CBC, as PEM, which node and OpenSSL
 *   (`openssl pkey -in FILE -passin …`) read. node's `export({ cipher, passphrase })` cannot set
 *   the iteration count (it writes OpenSSL's default, 2,048), so the structure is built here.
 * - Passphrases: the operators' password rule (at least 12 characters, not breached, not easily
 *   guessed: accounts/passwords.ts), enforced on every write.
 * - Reading tells what protects a file, so one below the policy (fewer iterations, another
 *   cipher, not encrypted, or opened with a passphrase the rule refuses) is reported with the
 *   command that re-encrypts it, and still opens.
 * - Writes are whole or nothing: a temporary file in the same directory, fsync, then link (new
 *   files, never over an existing one) or rename (re-encryption), then fsync of the directory.
 */
import { createCipheriv, createPrivateKey, createPublicKey, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { PasswordRejectedError, checkPasswordPolicyHere } from '../accounts/passwords.js';
import { ConflictError, ValidationError } from '../errors.js';
import { sequenceElements, type DerElement } from '../pki/der.js';

/** What every key file is written with. */
export const KEY_ENCRYPTION = { kdf: 'PBKDF2-HMAC-SHA256', iterations: 600_000, cipher: 'AES-256-CBC' } as const;
export const MIN_PASSPHRASE_LENGTH = 12;

/** No passphrase was given. */
export class PassphraseMissingError extends ValidationError {
  constructor(where: string) {
    super(`A key passphrase is required: ${where}`, {}, 'keys.passphrase_missing');
  }
}

/** The passphrase is too weak to protect a key file written now. */
export class PassphraseWeakError extends ValidationError {
  constructor(problem: string, details: Record<string, unknown>) {
    super(`The key passphrase is refused: ${problem}`, { ...details, minLength: MIN_PASSPHRASE_LENGTH }, 'keys.passphrase_weak');
  }
}

/** The passphrase does not open the key file. */
export class PassphraseWrongError extends ValidationError {
  constructor(path: string) {
    super(`The passphrase does not open the private key ${path}`, { path }, 'keys.passphrase_wrong');
  }
}

/** The file is not a PKCS#8 private key (encrypted or not). */
export class KeyFileInvalidError extends ValidationError {
  constructor(path: string, problem: string) {
    super(`${path} is not a passphrase-encrypted private key (PKCS#8 PEM): ${problem}`, { path }, 'keys.key_file_invalid');
  }
}

/** A new key file would replace an existing one. */
export class KeyFileExistsError extends ConflictError {
  constructor(path: string) {
    super(`${path} already exists: a key file is never overwritten (choose another name)`, { path }, 'keys.key_file_exists');
  }
}

/** Why a passphrase may not protect a new key file, or null when it may. */
function passphraseProblem(passphrase: string): { problem: string; reason: unknown } | null {
  try {
    checkPasswordPolicyHere(passphrase, 'operator');
    return null;
  } catch (error) {
    if (error instanceof PasswordRejectedError) return { problem: error.problem, reason: error.details?.reason };
    throw error;
  }
}

/** The passphrase, if present; `where` says how to give it. */
export function requirePassphrase(passphrase: string | undefined, where: string): string {
  if (!passphrase) throw new PassphraseMissingError(where);
  return passphrase;
}

/** The passphrase, if present and strong enough to protect a key file written now. */
export function checkPassphrase(passphrase: string | undefined, where: string): string {
  const present = requirePassphrase(passphrase, where);
  const weak = passphraseProblem(present);
  if (weak) throw new PassphraseWeakError(weak.problem, { reason: weak.reason });
  return present;
}

// --- DER: the few encodings an EncryptedPrivateKeyInfo needs ---

function tlv(tag: number, body: Buffer): Buffer {
  if (body.length < 0x80) return Buffer.concat([Buffer.from([tag, body.length]), body]);
  const length = Buffer.from(body.length.toString(16).padStart(body.length > 0xff ? 4 : 2, '0'), 'hex');
  return Buffer.concat([Buffer.from([tag, 0x80 | length.length]), length, body]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const octets = (b: Buffer) => tlv(0x04, b);
const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
const NULL = Buffer.from([0x05, 0x00]);
function integer(n: number): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return tlv(0x02, Buffer.from(hex, 'hex'));
}

const OID = {
  pbes2: '2a864886f70d01050d',
  pbkdf2: '2a864886f70d01050c',
  scrypt: '2b06010401da47040b',
  hmacWithSha1: '2a864886f70d0207',
  hmacWithSha256: '2a864886f70d0209',
  hmacWithSha384: '2a864886f70d020a',
  hmacWithSha512: '2a864886f70d020b',
  aes128Cbc: '608648016503040102',
  aes192Cbc: '608648016503040116',
  aes256Cbc: '60864801650304012a',
} as const;
const PRF_NAMES: Record<string, string> = {
  [OID.hmacWithSha1]: 'SHA1',
  [OID.hmacWithSha256]: 'SHA256',
  [OID.hmacWithSha384]: 'SHA384',
  [OID.hmacWithSha512]: 'SHA512',
};
const CIPHER_NAMES: Record<string, string> = {
  [OID.aes128Cbc]: 'AES-128-CBC',
  [OID.aes192Cbc]: 'AES-192-CBC',
  [OID.aes256Cbc]: 'AES-256-CBC',
};

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/;

/** A private key (any type node knows) as encrypted PKCS#8 PEM under the passphrase, at KEY_ENCRYPTION. */
export function encryptPrivateKey(privateKey: KeyObject, passphrase: string): string {
  checkPassphrase(passphrase, 'give one of at least 12 characters');
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(passphrase, salt, KEY_ENCRYPTION.iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(privateKey.export({ type: 'pkcs8', format: 'der' })), cipher.final()]);
  const kdf = seq(oid(OID.pbkdf2), seq(octets(salt), integer(KEY_ENCRYPTION.iterations), integer(32), seq(oid(OID.hmacWithSha256), NULL)));
  const der = seq(seq(oid(OID.pbes2), seq(kdf, seq(oid(OID.aes256Cbc), octets(iv)))), octets(encrypted));
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

/** How a key file is protected. */
export interface KeyProtection {
  /** e.g. "PBKDF2-HMAC-SHA256, 2,048 iterations, AES-256-CBC" or "not encrypted". */
  description: string;
  /** PBKDF2's iteration count, null when the file does not use PBKDF2. */
  iterations: number | null;
  /** Whether it is what KEY_ENCRYPTION writes, at least as many iterations. */
  current: boolean;
}

const isOid = (element: DerElement | undefined, hex: string) => element?.tag === 0x06 && element.contents.toString('hex') === hex;
const oidHex = (element: DerElement | undefined) => (element?.tag === 0x06 ? element.contents.toString('hex') : '');

function unsignedInteger(element: DerElement | undefined): number {
  if (element?.tag !== 0x02 || element.contents.length === 0 || element.contents.length > 6 || element.contents[0]! & 0x80)
    throw new Error('the iteration count is not a positive INTEGER');
  return element.contents.readUIntBE(0, element.contents.length);
}

/** What protects an EncryptedPrivateKeyInfo (DER). */
function encryptedProtection(der: Buffer): KeyProtection {
  const [algorithm, data] = sequenceElements(der);
  if (!algorithm || data?.tag !== 0x04) throw new Error('not an EncryptedPrivateKeyInfo');
  const [scheme, params] = sequenceElements(algorithm.bytes);
  if (!isOid(scheme, OID.pbes2) || !params) return { description: 'PBES1 or another legacy scheme', iterations: null, current: false };
  const [kdf, encryption] = sequenceElements(params.bytes).map((e) => sequenceElements(e.bytes));
  const cipher = CIPHER_NAMES[oidHex(encryption?.[0])] ?? 'another cipher';
  if (isOid(kdf?.[0], OID.scrypt)) return { description: `scrypt, ${cipher}`, iterations: null, current: false };
  if (!isOid(kdf?.[0], OID.pbkdf2) || !kdf?.[1])
    return { description: `an unknown key derivation, ${cipher}`, iterations: null, current: false };
  const [, count, ...rest] = sequenceElements(kdf[1].bytes);
  const iterations = unsignedInteger(count);
  // keyLength (INTEGER) is optional; prf defaults to HMAC-SHA1.
  const prfElement = rest.find((e) => e.tag === 0x30);
  const prf = prfElement ? (PRF_NAMES[oidHex(sequenceElements(prfElement.bytes)[0])] ?? 'an unknown PRF') : 'SHA1';
  const description = `PBKDF2-HMAC-${prf}, ${iterations.toLocaleString('en-US')} iterations, ${cipher}`;
  return {
    description,
    iterations,
    current: prf === 'SHA256' && cipher === KEY_ENCRYPTION.cipher && iterations >= KEY_ENCRYPTION.iterations,
  };
}

/** What protects the key in a PEM file (without the passphrase). */
export function keyProtectionOf(pem: string, path: string): KeyProtection {
  const block = PEM.exec(pem);
  if (!block) throw new KeyFileInvalidError(path, 'no PEM block');
  const label = block[1]!;
  if (label === 'ENCRYPTED PRIVATE KEY') {
    try {
      return encryptedProtection(Buffer.from(block[2]!.replace(/\s+/g, ''), 'base64'));
    } catch (error) {
      throw new KeyFileInvalidError(path, (error as Error).message);
    }
  }
  if (/PRIVATE KEY$/.test(label))
    return {
      description: /Proc-Type: 4,ENCRYPTED/.test(block[2]!) ? 'legacy PEM encryption' : 'not encrypted',
      iterations: null,
      current: false,
    };
  throw new KeyFileInvalidError(path, `a "${label}" PEM block`);
}

export interface OpenedKey {
  privateKey: KeyObject;
  protection: KeyProtection;
  /** Set when the file is below the policy: what is wrong and the command that re-encrypts it. */
  warning: string | null;
}

function decrypt(pem: string, passphrase: string, path: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new PassphraseWrongError(path);
  }
}

/**
 * Opens a key file with its passphrase. A file below the policy still opens; `warning` then says
 * why and names `rekeyCommand`, the command that re-encrypts it.
 */
export function openKeyFile(path: string, passphrase: string, rekeyCommand: string): OpenedKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeyFileInvalidError(path, (error as Error).message);
  }
  const protection = keyProtectionOf(pem, path);
  const privateKey = decrypt(pem, passphrase, path);
  const problems: string[] = [];
  if (!protection.current)
    problems.push(
      `it is protected with ${protection.description}, below the policy (${KEY_ENCRYPTION.kdf}, ${KEY_ENCRYPTION.iterations.toLocaleString('en-US')} iterations, ${KEY_ENCRYPTION.cipher})`,
    );
  const weak = passphraseProblem(passphrase);
  if (weak) problems.push(`its passphrase would be refused today (${weak.problem})`);
  const warning = problems.length ? `${path}: ${problems.join('; ')}. Re-encrypt it: ${rekeyCommand}` : null;
  return { privateKey, protection, warning };
}

/** Writes `content` to a fresh temporary file (0600) beside `path`, synced to disk; returns its name. */
function writeSynced(path: string, content: string): string {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

function syncDirectory(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a new key file (0600) whole or not at all, never over an existing file. */
export function writeNewKeyFile(path: string, pem: string): void {
  const temp = writeSynced(path, pem);
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyFileExistsError(path);
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  syncDirectory(path);
}

export interface RekeyResult {
  path: string;
  before: KeyProtection;
  after: KeyProtection;
}

const publicDer = (key: KeyObject) => createPublicKey(key).export({ type: 'spki', format: 'der' });

/**
 * Re-encrypts key files at KEY_ENCRYPTION under `next` (which must meet the passphrase rule).
 * Every file is opened with `current` before any is written, so a wrong passphrase changes
 * nothing; each file is then replaced whole (temporary file, fsync, read back and checked to hold
 * the same key, rename), mode 0600.
 */
export function rekeyFiles(paths: string[], current: string, next: string, where: string): RekeyResult[] {
  checkPassphrase(next, where);
  const opened = paths.map((path) => ({ path, ...openKeyFile(path, current, '') }));
  return opened.map(({ path, privateKey, protection }) => {
    const pem = encryptPrivateKey(privateKey, next);
    const temp = writeSynced(path, pem);
    try {
      if (!publicDer(decrypt(readFileSync(temp, 'utf8'), next, temp)).equals(publicDer(privateKey)))
        throw new Error(`the re-encrypted ${path} does not hold the same key`);
      renameSync(temp, path);
    } finally {
      rmSync(temp, { force: true });
    }
    syncDirectory(path);
    return { path, before: protection, after: keyProtectionOf(pem, path) };
  });
}

/** A path as a shell word, for the commands warnings name. */
export function shellWord(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
