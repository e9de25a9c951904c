/**
 * The backup archive's envelope: a one-line JSON header in the clear (format, deployment, how the
 * key is derived), then the contents encrypted with AES-256-GCM in 64 KiB segments (the STREAM
 * construction of Hoang, Reyhanitabar, Rogaway and Vizár, as age and Tink use it). Each segment's
 * nonce is a random 7-byte prefix, its 32-bit index and a final-segment flag, and each segment
 * authenticates the header: a flipped bit, a reordered, dropped or appended segment, a truncated
 * file or an edited header fails authentication. Nothing decrypted is handed on before its segment
 * authenticated.
 *
 * The key is a backup key file (`bulwark backup keygen`, 32 random bytes) or a passphrase through
 * scrypt. Either is kept apart from the data: whoever holds the data directory and its backups
 * must not also hold the key that opens them.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { ConflictError, IntegrityError, ValidationError } from '../../errors.js';

export const BACKUP_FORMAT = 'bulwark-backup/1';
const SEGMENT_BYTES = 64 * 1024;
const TAG_BYTES = 16;
const NONCE_PREFIX_BYTES = 7;
const MAX_HEADER_BYTES = 4096;
const KEY_FILE_PREFIX = 'bulwark-backup-key-v1:';
/** scrypt cost for passphrases: 2^17 × 8 × 128 bytes = 128 MiB and about half a second here. */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
export const MIN_BACKUP_PASSPHRASE_LENGTH = 16;

export type BackupKeySource = { kind: 'key-file'; path: string } | { kind: 'passphrase'; passphrase: string };

export interface EnvelopeHeader {
  format: typeof BACKUP_FORMAT;
  /** When the backup was taken (ISO 8601). */
  created: string;
  /** SHA-256 of the deployment's root CA certificate (DER, hex): which deployment this is. */
  deployment: string;
  key: { kind: 'key-file'; id: string } | { kind: 'passphrase'; kdf: 'scrypt'; salt: string; N: number; r: number; p: number };
  cipher: 'AES-256-GCM-STREAM-64KiB';
  noncePrefix: string;
}

export class BackupKeyError extends ValidationError {
  constructor(message: string) {
    super(message, {}, 'backup.key_invalid');
  }
}

/** Writes a new backup key file (mode 0600); refuses to overwrite one. */
export function createBackupKeyFile(path: string): string {
  const key = randomBytes(32);
  try {
    writeFileSync(path, `${KEY_FILE_PREFIX}${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ConflictError(`${path} exists: a backup key is never overwritten`, {}, 'backup.key_exists');
    throw error;
  }
  return keyId(key);
}

function readBackupKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new BackupKeyError(`Cannot read the backup key file ${path}: ${(error as Error).message}`);
  }
  const key = text.startsWith(KEY_FILE_PREFIX) ? Buffer.from(text.slice(KEY_FILE_PREFIX.length), 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new BackupKeyError(`${path} is not a backup key file (make one with: bulwark backup keygen --out FILE)`);
  return key;
}

const keyId = (key: Buffer): string => createHash('sha256').update('bulwark-backup-key-id').update(key).digest('hex').slice(0, 16);

/** A fresh header and its key, for writing a backup. */
export function newEnvelope(source: BackupKeySource, deployment: string, now: Date): { header: EnvelopeHeader; key: Buffer } {
  const common = { format: BACKUP_FORMAT, created: now.toISOString(), deployment, cipher: 'AES-256-GCM-STREAM-64KiB' } as const;
  const noncePrefix = randomBytes(NONCE_PREFIX_BYTES).toString('base64');
  if (source.kind === 'key-file') {
    const key = readBackupKeyFile(source.path);
    return { header: { ...common, key: { kind: 'key-file', id: keyId(key) }, noncePrefix }, key };
  }
  if (source.passphrase.length < MIN_BACKUP_PASSPHRASE_LENGTH) {
    throw new BackupKeyError(`A backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE_LENGTH} characters`);
  }
  const salt = randomBytes(16);
  const key = scrypt(source.passphrase, salt, SCRYPT);
  return { header: { ...common, key: { kind: 'passphrase', kdf: 'scrypt', salt: salt.toString('base64'), ...SCRYPT }, noncePrefix }, key };
}

/** The key a header was written with, from the operator's key file or passphrase; refuses the wrong one before decrypting. */
export function envelopeKey(header: EnvelopeHeader, source: BackupKeySource): Buffer {
  if (header.key.kind === 'key-file') {
    if (source.kind !== 'key-file') throw new BackupKeyError('This backup was made with a backup key file: pass --key-file');
    const key = readBackupKeyFile(source.path);
    const id = keyId(key);
    if (id !== header.key.id) {
      throw new BackupKeyError(`This backup was made with backup key ${header.key.id}, and ${source.path} is key ${id}`);
    }
    return key;
  }
  if (source.kind !== 'passphrase') throw new BackupKeyError('This backup was made with a passphrase: set BULWARK_BACKUP_PASSPHRASE');
  const { N, r, p, salt } = header.key;
  // The cost comes from the archive: bound it, so a crafted header cannot make restore allocate gigabytes.
  if (N > 2 ** 20 || r > 16 || p > 4)
    throw new ValidationError('The backup header asks for an unreasonable scrypt cost', {}, 'backup.invalid');
  return scrypt(source.passphrase, Buffer.from(salt, 'base64'), { N, r, p });
}

function scrypt(passphrase: string, salt: Buffer, cost: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase.normalize('NFKC'), salt, 32, { ...cost, maxmem: 256 * cost.N * cost.r + 16 * 1024 * 1024 });
}

export function encodeHeader(header: EnvelopeHeader): Buffer {
  return Buffer.from(JSON.stringify(header) + '\n');
}

/** Parses the header line (the bytes before the first newline) and checks its shape. */
export function decodeHeader(line: Buffer): EnvelopeHeader {
  let header: EnvelopeHeader;
  try {
    header = JSON.parse(line.toString('utf8')) as EnvelopeHeader;
  } catch {
    throw new ValidationError('Not a Bulwark backup: the first line is not a JSON header', {}, 'backup.invalid');
  }
  if (header?.format !== BACKUP_FORMAT) {
    throw new ValidationError(`Not a ${BACKUP_FORMAT} archive (format: ${String(header?.format)})`, {}, 'backup.invalid');
  }
  if (
    header.cipher !== 'AES-256-GCM-STREAM-64KiB' ||
    typeof header.deployment !== 'string' ||
    typeof header.created !== 'string' ||
    Buffer.from(String(header.noncePrefix), 'base64').length !== NONCE_PREFIX_BYTES ||
    (header.key?.kind !== 'key-file' && header.key?.kind !== 'passphrase')
  ) {
    throw new ValidationError('The backup header is malformed', {}, 'backup.invalid');
  }
  return header;
}

/** Splits the header line off the start of an archive file (read in one small chunk). */
export function splitHeader(start: Buffer): { line: Buffer; rest: number } {
  const newline = start.indexOf(0x0a);
  if (newline < 0 || newline > MAX_HEADER_BYTES) throw new ValidationError('Not a Bulwark backup: no header line', {}, 'backup.invalid');
  return { line: start.subarray(0, newline + 1), rest: newline + 1 };
}

function nonce(prefix: Buffer, index: number, last: boolean): Buffer {
  if (index > 0xffffffff) throw new ValidationError('The backup is too large for one archive (2^32 segments)', {}, 'backup.too_large');
  const value = Buffer.alloc(12);
  prefix.copy(value, 0);
  value.writeUInt32BE(index, NONCE_PREFIX_BYTES);
  value[11] = last ? 1 : 0;
  return value;
}

/**
 * Cuts a stream into fixed-size segments and hands each to `process`, holding the last one back
 * until the stream ends, so that only the final segment is processed as final.
 */
abstract class SegmentStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  protected index = 0;
  protected readonly prefix: Buffer;
  protected readonly aad: Buffer;

  constructor(
    protected readonly key: Buffer,
    header: EnvelopeHeader,
    private readonly segmentBytes: number,
  ) {
    super();
    this.prefix = Buffer.from(header.noncePrefix, 'base64');
    this.aad = encodeHeader(header);
  }

  protected abstract process(segment: Buffer, last: boolean): Buffer;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      // Keep at least one byte back: only the flush knows which segment is the last.
      while (this.pendingBytes > this.segmentBytes) {
        const all = Buffer.concat(this.pending);
        this.push(this.process(all.subarray(0, this.segmentBytes), false));
        this.pending = [all.subarray(this.segmentBytes)];
        this.pendingBytes = all.length - this.segmentBytes;
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.push(this.process(Buffer.concat(this.pending), true));
      done();
    } catch (error) {
      done(error as Error);
    }
  }
}

/** Encrypts a byte stream segment by segment; the last segment (possibly empty) carries the final flag. */
export class EncryptStream extends SegmentStream {
  constructor(key: Buffer, header: EnvelopeHeader) {
    super(key, header, SEGMENT_BYTES);
  }

  protected process(plain: Buffer, last: boolean): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce(this.prefix, this.index++, last));
    cipher.setAAD(this.aad);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }
}

/** Decrypts what EncryptStream wrote; fails on any altered, reordered, missing or extra segment. */
export class DecryptStream extends SegmentStream {
  constructor(key: Buffer, header: EnvelopeHeader) {
    super(key, header, SEGMENT_BYTES + TAG_BYTES);
  }

  protected process(sealed: Buffer, last: boolean): Buffer {
    if (sealed.length < TAG_BYTES) throw tampered('it ends inside a segment');
    const decipher = createDecipheriv('aes-256-gcm', this.key, nonce(this.prefix, this.index++, last));
    decipher.setAAD(this.aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw tampered(`segment ${this.index - 1} does not authenticate${last ? ' as the final one (truncated?)' : ''}`);
    }
  }
}

function tampered(why: string): ValidationError {
  return new IntegrityError(`The backup archive is damaged or was altered: ${why}`, 'backup.tampered');
}
