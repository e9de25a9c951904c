/**
 * PKCS#11 key custody (an HSM, or SoftHSM in tests and small deployments) through pkcs11js.
 * Keys are generated on the token as sensitive and non-extractable: the platform gets handles,
 * signatures and public keys, never private key bytes.
 *   - Pkcs11Signer: ECDSA P-256 (CKM_ECDSA over a SHA-256 digest) or Ed25519 (CKM_EDDSA); the
 *     signer the PKI adopts for CA and update-signing keys.
 *   - Pkcs11Kek: an AES-256 key on the token wrapping data keys (AES-GCM), a master-key backend.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { ValidationError } from '../errors.js';
import { KeyCustodyError, type KeyEncryptionKey } from './custody.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

// PKCS#11 3.0 values pkcs11js does not name.
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const CKK_EC_EDWARDS = 0x40;

export type Pkcs11Algorithm = 'ecdsa-p256' | 'ed25519';

const CURVES: Record<Pkcs11Algorithm, { params: string; spkiPrefix: string; keyType: number; generate: number }> = {
  'ecdsa-p256': {
    params: '06082a8648ce3d030107',
    spkiPrefix: '3059301306072a8648ce3d020106082a8648ce3d030107034200',
    keyType: pkcs11js.CKK_EC,
    generate: pkcs11js.CKM_EC_KEY_PAIR_GEN,
  },
  ed25519: { params: '06032b6570', spkiPrefix: '302a300506032b6570032100', keyType: CKK_EC_EDWARDS, generate: CKM_EC_EDWARDS_KEY_PAIR_GEN },
};

export interface Pkcs11Options {
  /** Path of the PKCS#11 module (default: Debian's SoftHSM). */
  module?: string;
  tokenLabel: string;
  pin: string;
}

/** The token failed or refused an operation; `cause` carries the CKR_ code. */
export class Pkcs11Error extends KeyCustodyError {
  constructor(message: string, cause?: unknown) {
    super(message, 'keys.hsm_error');
    if (cause) this.cause = cause;
  }
}

/**
 * Loaded PKCS#11 modules of this process: C_Initialize is process-wide, so every token of one
 * module shares its instance, finalized when the last of them closes.
 */
const loadedModules = new Map<string, { p11: pkcs11js.PKCS11; tokens: number; logins: Map<string, number> }>();

function loadModule(path: string): pkcs11js.PKCS11 {
  const loaded = loadedModules.get(path);
  if (loaded) {
    loaded.tokens++;
    return loaded.p11;
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
    p11.C_Initialize();
  } catch (error) {
    throw new Pkcs11Error(`Cannot load the PKCS#11 module ${path}: ${(error as Error).message}`, error);
  }
  loadedModules.set(path, { p11, tokens: 1, logins: new Map() });
  return p11;
}

function releaseModule(path: string): void {
  const loaded = loadedModules.get(path);
  if (!loaded || --loaded.tokens > 0) return;
  loadedModules.delete(path);
  loaded.p11.C_Finalize();
}

/** A logged-in session on one token; tokens of one module share its loaded instance. */
export class Pkcs11Token {
  private constructor(
    private readonly p11: pkcs11js.PKCS11,
    readonly session: Buffer,
    private readonly modulePath: string,
    private readonly tokenLabel: string,
  ) {}

  static open(options: Pkcs11Options): Pkcs11Token {
    const modulePath = options.module ?? SOFTHSM_MODULE;
    const p11 = loadModule(modulePath);
    try {
      const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === options.tokenLabel);
      if (!slot) throw new Pkcs11Error(`No PKCS#11 token labelled "${options.tokenLabel}"`);
      const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      // Login is per application and token: sessions opened while another is logged in share it.
      const logins = loadedModules.get(modulePath)!.logins;
      const loggedIn = logins.get(options.tokenLabel) ?? 0;
      try {
        if (loggedIn === 0) p11.C_Login(session, pkcs11js.CKU_USER, options.pin);
      } catch (error) {
        p11.C_CloseSession(session);
        throw error;
      }
      logins.set(options.tokenLabel, loggedIn + 1);
      return new Pkcs11Token(p11, session, modulePath, options.tokenLabel);
    } catch (error) {
      releaseModule(modulePath);
      throw error instanceof Pkcs11Error
        ? error
        : new Pkcs11Error(`Cannot open the PKCS#11 token "${options.tokenLabel}": ${(error as Error).message}`, error);
    }
  }

  /** Generates a key pair on the token; the private half is sensitive and never extractable. */
  generateKeyPair(algorithm: Pkcs11Algorithm, label: string): Pkcs11Signer {
    const curve = CURVES[algorithm];
    const id = randomBytes(16);
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_KEY_TYPE, value: curve.keyType },
    ];
    const keys = this.call('C_GenerateKeyPair', () =>
      this.p11.C_GenerateKeyPair(
        this.session,
        { mechanism: curve.generate },
        [
          ...common,
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
          { type: pkcs11js.CKA_VERIFY, value: true },
          { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from(curve.params, 'hex') },
        ],
        [
          ...common,
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        ],
      ),
    );
    return new Pkcs11Signer(this, algorithm, label, keys.privateKey, this.publicKeyOf(algorithm, keys.publicKey));
  }

  /** The key pair generated earlier under this label. */
  signer(label: string): Pkcs11Signer {
    const privateKey = this.findOne(pkcs11js.CKO_PRIVATE_KEY, label);
    const publicKey = this.findOne(pkcs11js.CKO_PUBLIC_KEY, label);
    const keyType = this.attribute(privateKey, pkcs11js.CKA_KEY_TYPE).readUIntLE(0, 1);
    const algorithm: Pkcs11Algorithm = keyType === CKK_EC_EDWARDS ? 'ed25519' : 'ecdsa-p256';
    return new Pkcs11Signer(this, algorithm, label, privateKey, this.publicKeyOf(algorithm, publicKey));
  }

  /** The AES key-encryption key generated earlier under this label. */
  kek(label: string): Pkcs11Kek {
    const key = this.findOne(pkcs11js.CKO_SECRET_KEY, label);
    return new Pkcs11Kek(this, key, kekId(this.attribute(key, pkcs11js.CKA_ID)));
  }

  /** True when the token holds an object of this class under this label. */
  has(objectClass: 'private' | 'secret', label: string): boolean {
    return this.findAll(objectClass === 'private' ? pkcs11js.CKO_PRIVATE_KEY : pkcs11js.CKO_SECRET_KEY, label).length > 0;
  }

  /** Generates an AES-256 key-encryption key on the token (sensitive, non-extractable). */
  generateKek(label: string): Pkcs11Kek {
    const id = randomBytes(16);
    const key = this.call('C_GenerateKey', () =>
      this.p11.C_GenerateKey(this.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      ]),
    );
    return new Pkcs11Kek(this, key, kekId(id));
  }

  /** Reads one attribute of an object; throws Pkcs11Error when the token refuses (e.g. CKA_VALUE of a sensitive key). */
  attribute(object: Buffer, type: number): Buffer {
    const [result] = this.call('C_GetAttributeValue', () => this.p11.C_GetAttributeValue(this.session, object, [{ type }]));
    return result!.value as Buffer;
  }

  sign(mechanism: number, key: Buffer, data: Buffer, length: number): Buffer {
    return this.call('C_Sign', () => {
      this.p11.C_SignInit(this.session, { mechanism }, key);
      return this.p11.C_Sign(this.session, data, Buffer.alloc(length));
    });
  }

  gcm(encrypt: boolean, key: Buffer, iv: Buffer, aad: Buffer, input: Buffer): Buffer {
    const mechanism = {
      mechanism: pkcs11js.CKM_AES_GCM,
      parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad, tagBits: 128 },
    };
    return this.call(encrypt ? 'C_Encrypt' : 'C_Decrypt', () => {
      if (encrypt) {
        this.p11.C_EncryptInit(this.session, mechanism, key);
        return this.p11.C_Encrypt(this.session, input, Buffer.alloc(input.length + 16));
      }
      this.p11.C_DecryptInit(this.session, mechanism, key);
      return this.p11.C_Decrypt(this.session, input, Buffer.alloc(input.length));
    });
  }

  close(): void {
    try {
      const logins = loadedModules.get(this.modulePath)?.logins;
      const left = (logins?.get(this.tokenLabel) ?? 1) - 1;
      if (left > 0) logins!.set(this.tokenLabel, left);
      else {
        logins?.delete(this.tokenLabel);
        this.p11.C_Logout(this.session);
      }
      this.p11.C_CloseSession(this.session);
    } finally {
      releaseModule(this.modulePath);
    }
  }

  private publicKeyOf(algorithm: Pkcs11Algorithm, publicKey: Buffer): KeyObject {
    // CKA_EC_POINT is the point wrapped in a DER OCTET STRING (short form: tag, length, point).
    const der = this.attribute(publicKey, pkcs11js.CKA_EC_POINT);
    const point = der[0] === 0x04 && der[1] === der.length - 2 ? der.subarray(2) : der;
    return createPublicKey({ key: Buffer.concat([Buffer.from(CURVES[algorithm].spkiPrefix, 'hex'), point]), format: 'der', type: 'spki' });
  }

  private findOne(objectClass: number, label: string): Buffer {
    const found = this.findAll(objectClass, label);
    if (found.length !== 1) throw new Pkcs11Error(`Expected one key labelled "${label}" on the token, found ${found.length}`);
    return found[0]!;
  }

  private findAll(objectClass: number, label: string): Buffer[] {
    return this.call('C_FindObjects', () => {
      this.p11.C_FindObjectsInit(this.session, [
        { type: pkcs11js.CKA_CLASS, value: objectClass },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]);
      try {
        return this.p11.C_FindObjects(this.session, 2);
      } finally {
        this.p11.C_FindObjectsFinal(this.session);
      }
    });
  }

  private call<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof Pkcs11Error) throw error;
      throw new Pkcs11Error(`${operation} failed: ${(error as Error).message}`, error);
    }
  }
}

/** The id a token KEK goes by in sealed values (`h` and 11 hex digits of the SHA-256 of its CKA_ID). */
function kekId(ckaId: Buffer): string {
  return `h${createHash('sha256').update(ckaId).digest('hex').slice(0, 11)}`;
}

/** Where the token is, as configured (`keys.pkcs11`); the PIN is read from the environment variable `pinEnv`. */
export interface Pkcs11Settings {
  module?: string | undefined;
  tokenLabel: string;
  pinEnv?: string | undefined;
}

export const DEFAULT_PIN_ENV = 'BULWARK_PKCS11_PIN';

/** The options to open the configured token, or a ValidationError naming the missing PIN variable. */
export function pkcs11Options(settings: Pkcs11Settings, env: NodeJS.ProcessEnv = process.env): Pkcs11Options {
  const pinEnv = settings.pinEnv ?? DEFAULT_PIN_ENV;
  const pin = env[pinEnv];
  if (!pin) {
    throw new ValidationError(
      `The PKCS#11 token "${settings.tokenLabel}" needs its user PIN in the environment variable ${pinEnv} (keys.pkcs11.pinEnv); it is not set`,
      { pinEnv },
      'config.pkcs11_pin_missing',
    );
  }
  return { module: settings.module ?? SOFTHSM_MODULE, tokenLabel: settings.tokenLabel, pin };
}

/** Open tokens of this process, shared: C_Initialize is process-wide, so two opens of one module would fail. */
const openTokens = new Map<string, { token: Pkcs11Token; refs: number }>();

/** A token opened on first use and shared by everything in the process that uses the same one. */
export class TokenAccess {
  private held: Pkcs11Token | null = null;

  constructor(private readonly options: () => Pkcs11Options) {}

  get(): Pkcs11Token {
    if (this.held) return this.held;
    const options = this.options();
    const key = `${options.module ?? SOFTHSM_MODULE}\0${options.tokenLabel}`;
    let entry = openTokens.get(key);
    if (!entry) {
      entry = { token: Pkcs11Token.open(options), refs: 0 };
      openTokens.set(key, entry);
    }
    entry.refs++;
    this.held = entry.token;
    this.release = () => {
      if (--entry.refs === 0) {
        openTokens.delete(key);
        entry.token.close();
      }
    };
    return this.held;
  }

  private release: () => void = () => undefined;

  close(): void {
    if (!this.held) return;
    this.held = null;
    this.release();
    this.release = () => undefined;
  }
}

/**
 * A signing key that lives on the token. ECDSA signatures are IEEE P1363 (r|s, 64 bytes), as
 * WebCrypto produces them; Ed25519 signatures are the usual 64 bytes.
 */
export class Pkcs11Signer {
  constructor(
    private readonly token: Pkcs11Token,
    readonly algorithm: Pkcs11Algorithm,
    readonly label: string,
    readonly privateKey: Buffer,
    readonly publicKey: KeyObject,
  ) {}

  sign(data: Buffer): Buffer {
    if (this.algorithm === 'ed25519') return this.token.sign(CKM_EDDSA, this.privateKey, data, 64);
    return this.token.sign(pkcs11js.CKM_ECDSA, this.privateKey, createHash('sha256').update(data).digest(), 64);
  }
}

/** An AES-256 key on the token as a key-encryption key: data keys are wrapped with AES-GCM inside the HSM. */
export class Pkcs11Kek implements KeyEncryptionKey {
  constructor(
    private readonly token: Pkcs11Token,
    readonly handle: Buffer,
    readonly id: string,
  ) {}

  wrap(dataKey: Buffer, aad: Buffer): Buffer {
    const iv = randomBytes(12);
    return Buffer.concat([iv, this.token.gcm(true, this.handle, iv, aad, dataKey)]);
  }

  unwrap(wrapped: Buffer, aad: Buffer): Buffer {
    return this.token.gcm(false, this.handle, wrapped.subarray(0, 12), aad, wrapped.subarray(12));
  }
}
