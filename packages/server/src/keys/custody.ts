/**
 * Key custody: how secrets at rest are sealed. Envelope encryption — every sealed value gets its
 * own random AES-256-GCM data key, and that data key is wrapped under a key-encryption key (KEK:
 * the master key, or a key on an HSM). The sealed value names its KEK, so a key ring holding the
 * old and the new KEK opens everything while the master key is rotated, and rotation re-wraps a
 * 32-byte data key per value instead of re-encrypting the value.
 *
 *   v2.<kekId>.<wrapped data key: iv|ciphertext|tag>.<iv>.<body: ciphertext|tag>
 *   v1.<kekId>.<iv>.<body>        (before envelope encryption: AES-256-GCM under the master key)
 *
 * The context (e.g. `user:ID:totp`) is associated data of both layers, so a value copied onto
 * another row does not open.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { BulwarkError } from '../errors.js';

export class KeyCustodyError extends BulwarkError {
  constructor(message: string, code: ErrorCode = ErrorCodes.keysUnavailable) {
    super(code, message, 500);
  }
}

/** What every custody offers the services that keep secrets. */
export interface KeyCustody {
  /** Id of the KEK new values are sealed under. */
  readonly keyId: string;
  seal(plaintext: string | Buffer, context: string): string;
  open(sealed: string, context: string): Buffer;
  openText(sealed: string, context: string): string;
  /** The sealed value with its data key wrapped under the current KEK, or null when it already is. */
  rewrap(sealed: string, context: string): string | null;
}

/** A key-encryption key: wraps and unwraps data keys, never sees the secrets themselves. */
export interface KeyEncryptionKey {
  readonly id: string;
  wrap(dataKey: Buffer, aad: Buffer): Buffer;
  unwrap(wrapped: Buffer, aad: Buffer): Buffer;
}

const TAG = 16;
const IV = 12;

export function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

export function gcmDecrypt(key: Buffer, data: Buffer, aad: Buffer): Buffer {
  if (data.length < IV + TAG) throw new KeyCustodyError('Sealed secret is malformed', 'keys.sealed_malformed');
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV));
  decipher.setAAD(aad);
  decipher.setAuthTag(data.subarray(data.length - TAG));
  try {
    return Buffer.concat([decipher.update(data.subarray(IV, data.length - TAG)), decipher.final()]);
  } catch {
    throw new KeyCustodyError('Sealed secret failed authentication (tampered, or wrong context)', 'keys.sealed_tampered');
  }
}

/** A 32-byte AES key held in memory (the master key from a file or the environment). */
export class SoftwareKek implements KeyEncryptionKey {
  readonly id: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new KeyCustodyError(`The master key must be 32 bytes, got ${key.length}`, 'keys.master_key_invalid');
    this.id = createHash('sha256').update(key).digest('hex').slice(0, 12);
  }

  wrap(dataKey: Buffer, aad: Buffer): Buffer {
    return gcmEncrypt(this.key, dataKey, aad);
  }

  unwrap(wrapped: Buffer, aad: Buffer): Buffer {
    return gcmDecrypt(this.key, wrapped, aad);
  }

  /** v1 values were encrypted directly under the master key. */
  openLegacy(iv: Buffer, body: Buffer, aad: Buffer): Buffer {
    return gcmDecrypt(this.key, Buffer.concat([iv, body]), aad);
  }

  derive(purpose: string): Buffer {
    return hkdf(this.key, purpose);
  }
}

/** Where a key ring comes from: the current KEK first, then older ones still in use. */
export interface KeyRingSource {
  /** Changes whenever the keys may have changed (cheap: checked before every seal). */
  stamp(): string;
  load(): KeyEncryptionKey[];
  /**
   * The secret purpose keys are derived from, for KEKs whose bytes are out of reach (a token
   * KEK): read on first use with the box that can open it. Software KEKs derive from their own bytes.
   */
  derivationSecret?(box: SecretBox): Buffer;
}

const hkdf = (secret: Buffer, purpose: string) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `bulwark:${purpose}`, 32));

const wrapAad = (context: string) => Buffer.from(`bulwark:data-key:${context}`);

/**
 * The custody of secrets at rest: the master key (and during a rotation the previous one) as KEKs,
 * software keys or AES keys on a PKCS#11 token. With a source it follows where the keys are
 * recorded: a value sealed under a KEK it does not hold yet, or a changed key file, makes it
 * reload, so running servers keep reading while `rotate-master` works.
 */
export class SecretBox implements KeyCustody {
  private ring = new Map<string, KeyEncryptionKey>();
  private current!: KeyEncryptionKey;
  private loadedStamp = '';
  private derivation: Buffer | null = null;

  constructor(keyOrSource: Buffer | KeyRingSource) {
    if (Buffer.isBuffer(keyOrSource)) {
      this.install([new SoftwareKek(keyOrSource)]);
      this.source = null;
    } else {
      this.source = keyOrSource;
      this.refresh();
    }
  }

  private readonly source: KeyRingSource | null;

  get keyId(): string {
    return this.current.id;
  }

  /** Ids of every KEK this box can open values under. */
  keyIds(): string[] {
    return [...this.ring.keys()];
  }

  /** Re-reads the key source (no-op for a fixed key). */
  refresh(): void {
    if (!this.source) return;
    this.loadedStamp = this.source.stamp();
    this.install(this.source.load());
  }

  private install(keys: KeyEncryptionKey[]): void {
    if (!keys[0]) throw new KeyCustodyError('The key ring is empty', 'keys.master_key_missing');
    this.current = keys[0];
    this.ring = new Map(keys.map((k) => [k.id, k]));
  }

  private kek(id: string): KeyEncryptionKey {
    let kek = this.ring.get(id);
    if (!kek && this.source) {
      this.refresh();
      kek = this.ring.get(id);
    }
    if (!kek)
      throw new KeyCustodyError(`Secret was sealed under master key ${id}, not the loaded key ${this.current.id}`, 'keys.wrong_master_key');
    return kek;
  }

  seal(plaintext: string | Buffer, context: string): string {
    if (this.source && this.source.stamp() !== this.loadedStamp) this.refresh();
    const dataKey = randomBytes(32);
    const body = gcmEncrypt(dataKey, Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext), Buffer.from(context));
    return this.envelope(this.current, dataKey, body, context);
  }

  private envelope(kek: KeyEncryptionKey, dataKey: Buffer, body: Buffer, context: string): string {
    const wrapped = kek.wrap(dataKey, wrapAad(context));
    return ['v2', kek.id, wrapped.toString('base64url'), body.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): Buffer {
    const parts = sealed.split('.');
    const [version, keyId] = parts;
    if (version === 'v2' && parts.length === 4 && keyId) {
      const dataKey = this.kek(keyId).unwrap(Buffer.from(parts[2]!, 'base64url'), wrapAad(context));
      return gcmDecrypt(dataKey, Buffer.from(parts[3]!, 'base64url'), Buffer.from(context));
    }
    if (version === 'v1' && parts.length === 4 && keyId && parts[2] && parts[3]) {
      const kek = this.kek(keyId);
      // v1 predates token KEKs: only a software master key ever sealed one.
      if (!(kek instanceof SoftwareKek)) throw new KeyCustodyError('Sealed secret is malformed', 'keys.sealed_malformed');
      return kek.openLegacy(Buffer.from(parts[2], 'base64url'), Buffer.from(parts[3], 'base64url'), Buffer.from(context));
    }
    throw new KeyCustodyError('Sealed secret is malformed', 'keys.sealed_malformed');
  }

  openText(sealed: string, context: string): string {
    return this.open(sealed, context).toString('utf8');
  }

  rewrap(sealed: string, context: string): string | null {
    if (this.source && this.source.stamp() !== this.loadedStamp) this.refresh();
    const parts = sealed.split('.');
    if (parts[0] === 'v2' && parts[1] === this.current.id) return null;
    if (parts[0] === 'v2' && parts.length === 4 && parts[1]) {
      const dataKey = this.kek(parts[1]).unwrap(Buffer.from(parts[2]!, 'base64url'), wrapAad(context));
      return this.envelope(this.current, dataKey, Buffer.from(parts[3]!, 'base64url'), context);
    }
    return this.seal(this.open(sealed, context), context);
  }

  /**
   * A 32-byte key for one purpose (CSRF tokens, …), by HKDF: over the current master key's bytes
   * for a software key (as always, so existing data directories keep their derived keys), over
   * the source's derivation secret for a token KEK (it survives a rotation: only its wrapping changes).
   */
  deriveKey(purpose: string): Buffer {
    if (this.current instanceof SoftwareKek) return this.current.derive(purpose);
    if (!this.source?.derivationSecret)
      throw new KeyCustodyError(`Master key ${this.current.id} has no derivation secret to derive keys from`, 'keys.derivation_missing');
    this.derivation ??= this.source.derivationSecret(this);
    return hkdf(this.derivation, purpose);
  }
}

/** The KEK id a sealed value names (to report or skip values already under the current KEK). */
export function sealedKeyId(sealed: string): string | undefined {
  return sealed.split('.')[1];
}
