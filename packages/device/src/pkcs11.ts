/**
 * A device key kept on a PKCS#11 token (an HSM, a TPM's PKCS#11 front end, SoftHSM in tests)
 * instead of in `device.key`. The key pair is generated on the token (private half sensitive and
 * never extractable); the SDK gets signatures (the EST CSR) and the public key, never key bytes.
 *
 * For mutual TLS, node's OpenSSL uses the token key through the libp11 engine (Debian
 * `libengine-pkcs11-openssl`). The engine is loaded by its id `pkcs11` from OPENSSL_ENGINES: loaded
 * by file path, a second secure context in the same process fails ("init failed"), while by id
 * OpenSSL keeps it in its engine list and reuses it. The engine loads the module named by
 * PKCS11_MODULE_PATH. Both variables are set here when unset, and a different value is refused.
 *
 * The engine and pkcs11js share the module within the process: C_Initialize is process-wide, so
 * "already initialized" and "already logged in" are expected, and C_Finalize is never called (it
 * would invalidate the engine's sessions). The PIN is held in a private field, kept out of
 * `toJSON` and `util.inspect`, and written nowhere.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { inspect } from 'node:util';
import pkcs11js from 'pkcs11js';
import { DeviceError } from './errors.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
/** Where a stored token identity's PIN is read from when none is passed. */
export const PIN_ENV = 'BULWARK_PKCS11_PIN';

const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  riscv64: 'riscv64-linux-gnu',
};
/** Debian's libp11 engine for this architecture. */
export const DEFAULT_ENGINE = `/usr/lib/${MULTIARCH[process.arch] ?? `${process.arch}-linux-gnu`}/engines-3/pkcs11.so`;

const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** The token failed or refused: `pkcs11.module_missing`, `.token_not_found`, `.pin_incorrect`, `.pin_locked`, `.pin_missing`, `.key_not_found`, `.key_exists`, `.engine_missing`, `.engine_conflict`, `.engine_error`, `.error`. */
export class Pkcs11Error extends DeviceError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, code);
    if (cause) this.cause = cause;
  }
}

/** Where the key is: everything but the PIN, as stored in the identity directory. */
export interface Pkcs11KeyReference {
  /** The PKCS#11 module of the token (SOFTHSM_MODULE for SoftHSM in development). */
  module: string;
  tokenLabel: string;
  /** CKA_LABEL of the key pair. */
  keyLabel: string;
  /** The libp11 OpenSSL engine, full path (default DEFAULT_ENGINE). */
  engine: string;
}

/**
 * `module` has no default: a device must name its token's module, so a key never lands by
 * accident in SoftHSM (a software token in files) on hardware that has a secure element.
 */
export interface Pkcs11KeyOptions extends Pick<Pkcs11KeyReference, 'module'>, Partial<Pick<Pkcs11KeyReference, 'engine'>> {
  tokenLabel: string;
  keyLabel: string;
  /** The token's user PIN: used to log in, never stored or logged. */
  pin: string;
}

export function pkcs11Reference(options: Omit<Pkcs11KeyOptions, 'pin'>): Pkcs11KeyReference {
  if (typeof options.module !== 'string' || options.module === '')
    throw new Pkcs11Error("Name the token's PKCS#11 module (pkcs11.module), e.g. SOFTHSM_MODULE for SoftHSM", 'pkcs11.module_missing');
  return { module: options.module, tokenLabel: options.tokenLabel, keyLabel: options.keyLabel, engine: options.engine ?? DEFAULT_ENGINE };
}

/** Loaded modules by path, initialised once and never finalised (see the header). */
const modules = new Map<string, pkcs11js.PKCS11>();
/** SHA-256 of the PIN this process logged in with, by module and token: a later wrong PIN is still refused. */
const loggedIn = new Map<string, string>();

function moduleAt(path: string): pkcs11js.PKCS11 {
  const loaded = modules.get(path);
  if (loaded) return loaded;
  if (!existsSync(path))
    throw new Pkcs11Error(`The PKCS#11 module ${path} does not exist (for SoftHSM: apt install softhsm2)`, 'pkcs11.module_missing');
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
    p11.C_Initialize();
  } catch (error) {
    if (!hasCode(error, 'CKR_CRYPTOKI_ALREADY_INITIALIZED'))
      throw new Pkcs11Error(`Cannot load the PKCS#11 module ${path}: ${(error as Error).message}`, 'pkcs11.module_missing', error);
  }
  modules.set(path, p11);
  return p11;
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof Error && error.message.includes(code);
}

/** Runs a token call, turning its CKR_ error into a Pkcs11Error. */
function call<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof Pkcs11Error) throw error;
    throw new Pkcs11Error(`${what} failed on the PKCS#11 token: ${(error as Error).message}`, 'pkcs11.error', error);
  }
}

const wrongPin = (reference: Pkcs11KeyReference) => `Wrong user PIN for the PKCS#11 token "${reference.tokenLabel}"`;

/** A logged-in read-write session on the token named in `reference`. */
function openSession(reference: Pkcs11KeyReference, pin: string): { p11: pkcs11js.PKCS11; session: Buffer } {
  const p11 = moduleAt(reference.module);
  const slot = call('C_GetSlotList', () =>
    p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === reference.tokenLabel),
  );
  if (!slot) throw new Pkcs11Error(`No PKCS#11 token labelled "${reference.tokenLabel}" in ${reference.module}`, 'pkcs11.token_not_found');
  const session = call('C_OpenSession', () => p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  const login = `${reference.module}\0${reference.tokenLabel}`;
  const digest = createHash('sha256').update(pin).digest('hex');
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, pin);
    loggedIn.set(login, digest);
  } catch (error) {
    const refused = (code: string, message: string) => {
      p11.C_CloseSession(session);
      return new Pkcs11Error(message, code, error);
    };
    if (hasCode(error, 'CKR_USER_ALREADY_LOGGED_IN')) {
      // Login is per process: check the PIN against the one this process logged in with.
      if ((loggedIn.get(login) ?? digest) !== digest) throw refused('pkcs11.pin_incorrect', wrongPin(reference));
    } else if (hasCode(error, 'CKR_PIN_INCORRECT')) {
      throw refused('pkcs11.pin_incorrect', wrongPin(reference));
    } else if (hasCode(error, 'CKR_PIN_LOCKED')) {
      throw refused(
        'pkcs11.pin_locked',
        `The user PIN of the PKCS#11 token "${reference.tokenLabel}" is locked (too many wrong PINs); unlock it with the SO PIN`,
      );
    } else {
      throw refused('pkcs11.error', `Cannot log in to the PKCS#11 token "${reference.tokenLabel}": ${(error as Error).message}`);
    }
  }
  return { p11, session };
}

/** A P-256 key pair on a token; see the module header. `close()` ends its session. */
export class Pkcs11Key {
  readonly #pin: string;
  private readonly contexts = new Map<string, SecureContext>();

  private constructor(
    readonly reference: Pkcs11KeyReference,
    pin: string,
    private readonly p11: pkcs11js.PKCS11,
    private readonly session: Buffer,
    readonly privateHandle: Buffer,
    readonly publicKey: KeyObject,
  ) {
    this.#pin = pin;
  }

  /** Generates a new key pair under `keyLabel`; refuses a label the token already holds. */
  static generate(options: Pkcs11KeyOptions): Pkcs11Key {
    const reference = pkcs11Reference(options);
    const { p11, session } = openSession(reference, options.pin);
    try {
      if (findObjects(p11, session, pkcs11js.CKO_PRIVATE_KEY, reference.keyLabel).length > 0) {
        throw new Pkcs11Error(
          `The token "${reference.tokenLabel}" already holds a key labelled "${reference.keyLabel}"; choose another keyLabel or delete that key`,
          'pkcs11.key_exists',
        );
      }
      const common = [
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_LABEL, value: reference.keyLabel },
        { type: pkcs11js.CKA_ID, value: randomBytes(16) },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      ];
      const keys = call('C_GenerateKeyPair', () =>
        p11.C_GenerateKeyPair(
          session,
          { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
          [
            ...common,
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
            { type: pkcs11js.CKA_VERIFY, value: true },
            { type: pkcs11js.CKA_EC_PARAMS, value: P256_PARAMS },
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
      return new Pkcs11Key(reference, options.pin, p11, session, keys.privateKey, publicKeyOf(p11, session, keys.publicKey));
    } catch (error) {
      p11.C_CloseSession(session);
      throw error;
    }
  }

  /** The key pair generated earlier under `reference.keyLabel`. */
  static open(reference: Pkcs11KeyReference, pin: string): Pkcs11Key {
    const { p11, session } = openSession(reference, pin);
    try {
      const privateKeys = findObjects(p11, session, pkcs11js.CKO_PRIVATE_KEY, reference.keyLabel);
      const publicKeys = findObjects(p11, session, pkcs11js.CKO_PUBLIC_KEY, reference.keyLabel);
      if (privateKeys.length !== 1 || publicKeys.length !== 1) {
        throw new Pkcs11Error(
          `Expected one key pair labelled "${reference.keyLabel}" on the token "${reference.tokenLabel}", found ${privateKeys.length} private and ${publicKeys.length} public keys`,
          'pkcs11.key_not_found',
        );
      }
      return new Pkcs11Key(reference, pin, p11, session, privateKeys[0]!, publicKeyOf(p11, session, publicKeys[0]!));
    } catch (error) {
      p11.C_CloseSession(session);
      throw error;
    }
  }

  /** A new key pair on the same token for a re-key, labelled `<keyLabel>.<12 hex digits>`. */
  successor(): Pkcs11Key {
    const base = this.reference.keyLabel.replace(/\.[0-9a-f]{12}$/, '');
    return Pkcs11Key.generate({ ...this.reference, keyLabel: `${base}.${randomBytes(6).toString('hex')}`, pin: this.#pin });
  }

  /** ECDSA over the SHA-256 of `data`, IEEE P1363 (r|s, 64 bytes) as WebCrypto returns it. */
  sign(data: Buffer): Buffer {
    return call('C_Sign', () => {
      this.p11.C_SignInit(this.session, { mechanism: pkcs11js.CKM_ECDSA }, this.privateHandle);
      return this.p11.C_Sign(this.session, createHash('sha256').update(data).digest(), Buffer.alloc(64));
    });
  }

  /** A TLS context (trusting `ca`, presenting `cert`) whose private key stays on the token; made once per pair. */
  secureContext(ca: string, cert: string): SecureContext {
    const id = `${ca}\0${cert}`;
    let context = this.contexts.get(id);
    if (!context) {
      prepareEngine(this.reference);
      try {
        context = createSecureContext({ ca, cert, privateKeyEngine: 'pkcs11', privateKeyIdentifier: this.uri() });
      } catch (error) {
        throw engineError(this.reference, error);
      }
      this.contexts.set(id, context);
    }
    return context;
  }

  /** Deletes the key pair from the token (a key replaced by a re-key, or one whose enrollment failed). */
  destroy(): void {
    for (const objectClass of [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) {
      for (const handle of findObjects(this.p11, this.session, objectClass, this.reference.keyLabel))
        call('C_DestroyObject', () => this.p11.C_DestroyObject(this.session, handle));
    }
    this.close();
  }

  close(): void {
    try {
      this.p11.C_CloseSession(this.session);
    } catch {
      // Already closed.
    }
  }

  toJSON(): Pkcs11KeyReference {
    return this.reference;
  }

  [inspect.custom](): string {
    return `Pkcs11Key ${JSON.stringify(this.reference)}`;
  }

  /** RFC 7512 URI of the private key, with the PIN: handed to OpenSSL only. */
  private uri(): string {
    const e = encodeURIComponent;
    return `pkcs11:token=${e(this.reference.tokenLabel)};object=${e(this.reference.keyLabel)};type=private;pin-value=${e(this.#pin)}`;
  }
}

function findObjects(p11: pkcs11js.PKCS11, session: Buffer, objectClass: number, label: string): Buffer[] {
  return call('C_FindObjects', () => {
    p11.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: objectClass },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    try {
      return p11.C_FindObjects(session, 2);
    } finally {
      p11.C_FindObjectsFinal(session);
    }
  });
}

function publicKeyOf(p11: pkcs11js.PKCS11, session: Buffer, handle: Buffer): KeyObject {
  // CKA_EC_POINT is the point wrapped in a DER OCTET STRING (tag, short length, point).
  const [attribute] = call('C_GetAttributeValue', () => p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_POINT }]));
  const der = attribute!.value as Buffer;
  const point = der[0] === 0x04 && der[1] === der.length - 2 ? der.subarray(2) : der;
  return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, point]), format: 'der', type: 'spki' });
}

/** Checks the engine is there and points OPENSSL_ENGINES and PKCS11_MODULE_PATH at it and the module. */
function prepareEngine(reference: Pkcs11KeyReference, env: NodeJS.ProcessEnv = process.env): void {
  const engine = resolve(reference.engine);
  if (!['pkcs11.so', 'libpkcs11.so'].includes(basename(engine)) || !existsSync(engine)) {
    throw new Pkcs11Error(
      `The OpenSSL PKCS#11 engine ${engine} is not installed (Debian: apt install libengine-pkcs11-openssl); mutual TLS with a token key needs it`,
      'pkcs11.engine_missing',
    );
  }
  const wanted = { OPENSSL_ENGINES: dirname(engine), PKCS11_MODULE_PATH: resolve(reference.module) };
  for (const [name, value] of Object.entries(wanted)) {
    const current = env[name];
    if (current === undefined || current === '') env[name] = value;
    else if (resolve(current) !== value) {
      throw new Pkcs11Error(
        `${name} is set to ${current}, but this device key needs ${value}; the engine reads one value per process`,
        'pkcs11.engine_conflict',
      );
    }
  }
}

/** OpenSSL's engine error as a Pkcs11Error with the PIN and key failures told apart. */
function engineError(reference: Pkcs11KeyReference, error: unknown): Pkcs11Error {
  const message = (error as Error).message;
  if (/PIN incorrect/i.test(message)) return new Pkcs11Error(wrongPin(reference), 'pkcs11.pin_incorrect', error);
  if (/object not found/i.test(message))
    return new Pkcs11Error(
      `No private key labelled "${reference.keyLabel}" on the token "${reference.tokenLabel}"`,
      'pkcs11.key_not_found',
      error,
    );
  return new Pkcs11Error(
    `The OpenSSL PKCS#11 engine could not load the key "${reference.keyLabel}" from the token "${reference.tokenLabel}": ${message}`,
    'pkcs11.engine_error',
    error,
  );
}
