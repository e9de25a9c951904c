/**
 * The master key every secret at rest is sealed under. It comes from BULWARK_MASTER_KEY
 * (base64, 32 bytes) or from DIR/keys/master.key (mode 0600), created by `bulwark init`.
 * Sealing is AES-256-GCM with the secret's context (e.g. `user:ID:totp`) as associated data,
 * so a sealed value copied onto another row does not open.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BulwarkError } from '../errors.js';

export class KeyCustodyError extends BulwarkError {
  constructor(message: string, code = 'keys.unavailable') {
    super(code, message, 500);
  }
}

const VERSION = 'v1';

export class SecretBox {
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new KeyCustodyError(`The master key must be 32 bytes, got ${key.length}`, 'keys.master_key_invalid');
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 12);
  }

  seal(plaintext: string | Buffer, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return [VERSION, this.keyId, iv.toString('base64url'), body.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): Buffer {
    const [version, keyId, iv, body] = sealed.split('.');
    if (version !== VERSION || !iv || !body) throw new KeyCustodyError('Sealed secret is malformed', 'keys.sealed_malformed');
    if (keyId !== this.keyId) throw new KeyCustodyError(`Secret was sealed under master key ${keyId}, not the loaded key ${this.keyId}`, 'keys.wrong_master_key');
    const data = Buffer.from(body, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(data.subarray(data.length - 16));
    try {
      return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    } catch {
      throw new KeyCustodyError('Sealed secret failed authentication (tampered, or wrong context)', 'keys.sealed_tampered');
    }
  }

  /** A 32-byte key for one purpose (CSRF tokens, …) derived from the master key with HKDF. */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `bulwark:${purpose}`, 32));
  }

  openText(sealed: string, context: string): string {
    return this.open(sealed, context).toString('utf8');
  }
}

export function masterKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'master.key');
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

export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
  const fromEnv = env.BULWARK_MASTER_KEY;
  if (fromEnv) return new SecretBox(Buffer.from(fromEnv, 'base64'));
  const path = masterKeyPath(dataDir);
  if (!existsSync(path)) {
    throw new KeyCustodyError(`No master key: ${path} does not exist and BULWARK_MASTER_KEY is not set. Run \`bulwark init\` first.`, 'keys.master_key_missing');
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyCustodyError(`${path} is readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`, 'keys.master_key_exposed');
  }
  return new SecretBox(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64'));
}
