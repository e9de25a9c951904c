/**
 * The device's identity on disk: a directory (0700) holding `device.key` (PKCS#8, 0600, made on
 * the device and never sent anywhere) or, for a key on a PKCS#11 token, `device.key.pkcs11.json`
 * (where the key is: module, token and key labels, engine; never the PIN, which is passed in or read
 * from BULWARK_PKCS11_PIN), `device.pem` (its certificate) and `ca.pem` (the deployment root it
 * trusts). Files are replaced atomically (write, fsync, rename), and a new key
 * and certificate are installed as a pair, so a crash in the middle of a renewal leaves either the
 * old pair or the new one. A key file readable by group or others is refused, not used.
 */
import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { IdentityError, KeyExposedError } from './errors.js';
import type { DeviceKey } from './keys.js';
import { PIN_ENV, Pkcs11Error, Pkcs11Key, type Pkcs11KeyReference } from './pkcs11.js';

export const KEY_FILE = 'device.key';
/** Where a token-held key is (no secret in it), in place of KEY_FILE. */
export const TOKEN_KEY_FILE = 'device.key.pkcs11.json';
export const CERT_FILE = 'device.pem';
export const CA_FILE = 'ca.pem';
/** A key and certificate waiting to replace the current pair (see installPair). */
const NEXT = '.next';

export interface DeviceIdentity {
  deviceId: string;
  /** PKCS#8 PEM private key, or the key pair on a PKCS#11 token. */
  key: DeviceKey;
  /** The device certificate (PEM), possibly followed by its issuing CA. */
  cert: string;
  /** The deployment root (and chain) the device trusts for the API and the broker. */
  ca: string;
}

/** The device ID a certificate names: its subject CN. */
export function deviceIdOf(certPem: string): string {
  const cn = /^CN=(.+)$/m.exec(new X509Certificate(certPem).subject);
  if (!cn) throw new IdentityError('The device certificate has no subject CN (the device ID)', 'identity.no_device_id');
  return cn[1]!;
}

export interface IdentityStoreOptions {
  /** The user PIN of the token holding the key (default: the environment variable BULWARK_PKCS11_PIN). */
  pkcs11Pin?: string;
}

export class IdentityStore {
  constructor(
    readonly dir: string,
    private readonly options: IdentityStoreOptions = {},
  ) {}

  /** Creates the directory (0700) if needed and narrows its mode to 0700. */
  prepare(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    this.recover();
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  hasCertificate(): boolean {
    return existsSync(this.path(CERT_FILE));
  }

  /** The private key, after checking that only its owner can read it, or the token key its reference names. */
  readKey(): DeviceKey {
    const path = this.path(KEY_FILE);
    if (!existsSync(path)) {
      if (existsSync(this.path(TOKEN_KEY_FILE))) return this.openTokenKey();
      throw new IdentityError(`${path} does not exist: enroll the device first`, 'identity.missing');
    }
    const { mode } = statSync(path);
    if ((mode & 0o077) !== 0) throw new KeyExposedError(path, mode);
    return readFileSync(path, 'utf8');
  }

  private openTokenKey(): Pkcs11Key {
    const reference = JSON.parse(this.read(TOKEN_KEY_FILE)) as Partial<Record<keyof Pkcs11KeyReference, unknown>>;
    if (!isReference(reference))
      throw new IdentityError(`${this.path(TOKEN_KEY_FILE)} does not name a module, token, key and engine`, 'identity.bad_key_reference');
    const pin = this.options.pkcs11Pin ?? process.env[PIN_ENV];
    if (!pin)
      throw new Pkcs11Error(
        `The device key is on the PKCS#11 token "${reference.tokenLabel}": pass its user PIN (pkcs11Pin) or set ${PIN_ENV}`,
        'pkcs11.pin_missing',
      );
    return Pkcs11Key.open(reference, pin);
  }

  readCertificate(): string {
    return this.read(CERT_FILE);
  }

  readCa(): string {
    return this.read(CA_FILE);
  }

  writeCa(pem: string): void {
    this.prepare();
    writeAtomically(this.path(CA_FILE), pem, 0o644);
  }

  /** Loads the whole identity: key (permissions checked), certificate, trust anchors, device ID. */
  load(): DeviceIdentity {
    this.recover();
    const cert = this.readCertificate();
    return { deviceId: deviceIdOf(cert), key: this.readKey(), cert, ca: this.readCa() };
  }

  /**
   * Replaces the key (PEM, or the token key's reference) and certificate as a pair: the
   * certificate is written beside the current one, then the key (its presence means the pair is
   * complete), then both are renamed over the current files, certificate first, and a key of the
   * other kind is removed. `recover` finishes an interrupted swap.
   */
  installPair(key: DeviceKey, certPem: string): void {
    this.prepare();
    writeAtomically(this.path(CERT_FILE + NEXT), certPem, 0o644);
    if (typeof key === 'string') writeAtomically(this.path(KEY_FILE + NEXT), key, 0o600);
    else writeAtomically(this.path(TOKEN_KEY_FILE + NEXT), `${JSON.stringify(key.reference, null, 2)}\n`, 0o600);
    this.recover();
  }

  /** Completes a pair whose files were both written; drops a certificate whose key never followed. */
  private recover(): void {
    const nextCert = this.path(CERT_FILE + NEXT);
    const kinds = [KEY_FILE, TOKEN_KEY_FILE];
    const pending = kinds.find((name) => existsSync(this.path(name + NEXT)));
    if (pending) {
      if (existsSync(nextCert)) renameSync(nextCert, this.path(CERT_FILE));
      // The other kind goes before the new key lands: a crash in between leaves `.next` to finish.
      for (const other of kinds) if (other !== pending) rmSync(this.path(other), { force: true });
      renameSync(this.path(pending + NEXT), this.path(pending));
    } else {
      rmSync(nextCert, { force: true });
    }
  }

  private read(name: string): string {
    const path = this.path(name);
    if (!existsSync(path)) throw new IdentityError(`${path} does not exist: enroll the device first`, 'identity.missing');
    return readFileSync(path, 'utf8');
  }
}

function isReference(value: Partial<Record<keyof Pkcs11KeyReference, unknown>>): value is Pkcs11KeyReference {
  return [value.module, value.tokenLabel, value.keyLabel, value.engine].every((field) => typeof field === 'string' && field !== '');
}

/** Writes `text` to a temporary file with `mode`, flushes it, and renames it over `path`. */
export function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
