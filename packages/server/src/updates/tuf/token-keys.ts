/**
 * Offline TUF keys (root, targets, product-line release keys) held on a PKCS#11 token: an HSM, a
 * smart card or SoftHSM. A key is named by a PKCS#11 URI (RFC 7512), the subset
 *
 *   pkcs11:token=<token label>;object=<key label>[?module-path=<module .so>&pin-env=<VARIABLE>]
 *
 * The key pair is generated on the token (Ed25519, CKM_EDDSA; sensitive, not extractable) and
 * signs there: no private key byte reaches a file or this process. The user PIN comes from the
 * environment (`BULWARK_PKCS11_PIN`, or the variable `pin-env` names), never from the URI or an
 * argument, where `ps` would show it. Several tokens may be open at once (threshold signing).
 */
import type { Key } from '@tufjs/models';
import { ValidationError } from '../../errors.js';
import { DEFAULT_PIN_ENV, Pkcs11Error, SOFTHSM_MODULE, TokenAccess, type Pkcs11Signer } from '../../keys/pkcs11.js';
import type { OfflineSigner } from './offline.js';
import { tufKeyOf } from './keys.js';

export const PKCS11_URI_SCHEME = 'pkcs11:';

/** A token-held key as a PKCS#11 URI names it. */
export interface TokenKeyRef {
  token: string;
  object: string;
  module: string;
  pinEnv: string;
}

const uriError = (uri: string, why: string) =>
  new ValidationError(
    `"${uri.slice(0, 200)}" is not a usable PKCS#11 key URI: ${why} (expected pkcs11:token=<token label>;object=<key label>[?module-path=<module>&pin-env=<VARIABLE>])`,
    undefined,
    'keys.pkcs11_uri_invalid',
  );

function decode(uri: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw uriError(uri, `bad percent-escape in "${value}"`);
  }
}

export const isTokenKeyUri = (value: string): boolean => value.startsWith(PKCS11_URI_SCHEME);

/** Parses the URI; refuses a PIN inside it and attributes it does not know (a typo must not select another key). */
export function parseTokenKeyUri(uri: string): TokenKeyRef {
  if (!isTokenKeyUri(uri)) throw uriError(uri, 'it does not start with pkcs11:');
  const [path = '', query = ''] = uri.slice(PKCS11_URI_SCHEME.length).split('?', 2);
  const attributes = new Map<string, string>();
  for (const [part, separator] of [
    [path, ';'],
    [query, '&'],
  ] as const) {
    for (const pair of part.split(separator).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw uriError(uri, `"${pair}" is not name=value`);
      const name = pair.slice(0, eq);
      if (attributes.has(name)) throw uriError(uri, `${name} is given twice`);
      attributes.set(name, decode(uri, pair.slice(eq + 1)));
    }
  }
  if (attributes.has('pin-value') || attributes.has('pin-source'))
    throw uriError(uri, `the PIN never goes in the URI: set it in ${DEFAULT_PIN_ENV} (or the variable pin-env names)`);
  const unknown = [...attributes.keys()].filter((name) => !['token', 'object', 'module-path', 'pin-env'].includes(name));
  if (unknown.length) throw uriError(uri, `unknown attribute ${unknown.join(', ')}`);
  const token = attributes.get('token');
  const object = attributes.get('object');
  if (!token) throw uriError(uri, 'token= (the token label) is missing');
  if (!object) throw uriError(uri, 'object= (the key label) is missing');
  const pinEnv = attributes.get('pin-env') ?? DEFAULT_PIN_ENV;
  if (!/^[A-Z_][A-Z0-9_]{0,63}$/.test(pinEnv)) throw uriError(uri, `pin-env "${pinEnv}" is not an environment variable name`);
  return { token, object, module: attributes.get('module-path') ?? SOFTHSM_MODULE, pinEnv };
}

/** The tokens one command opens, each once however many of its keys are used; close() logs out of all. */
export class TokenKeys {
  private readonly tokens = new Map<string, TokenAccess>();

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  private token(ref: TokenKeyRef) {
    const id = `${ref.module}\0${ref.token}`;
    let access = this.tokens.get(id);
    if (!access) {
      access = new TokenAccess(() => {
        const pin = this.env[ref.pinEnv];
        if (!pin)
          throw new ValidationError(
            `The PKCS#11 token "${ref.token}" needs its user PIN in the environment variable ${ref.pinEnv}; it is not set`,
            { pinEnv: ref.pinEnv },
            'keys.pkcs11_pin_missing',
          );
        return { module: ref.module, tokenLabel: ref.token, pin };
      });
      this.tokens.set(id, access);
    }
    return access.get();
  }

  /** Generates a new Ed25519 key pair on the token under the URI's label; refuses a label already in use. */
  generate(uri: string): OfflineSigner {
    const ref = parseTokenKeyUri(uri);
    const token = this.token(ref);
    if (token.has('private', ref.object))
      throw new ValidationError(
        `The token "${ref.token}" already holds a key labelled "${ref.object}": choose another object= label`,
        { token: ref.token, object: ref.object },
        'keys.token_key_exists',
      );
    return tokenSigner(token.generateKeyPair('ed25519', ref.object));
  }

  /** The key the URI names, to sign with on the token. */
  signer(uri: string): OfflineSigner {
    const ref = parseTokenKeyUri(uri);
    const signer = this.token(ref).signer(ref.object);
    if (signer.algorithm !== 'ed25519')
      throw new Pkcs11Error(`The key "${ref.object}" on token "${ref.token}" is ${signer.algorithm}; offline update keys are Ed25519`);
    return tokenSigner(signer);
  }

  close(): void {
    for (const access of this.tokens.values()) access.close();
    this.tokens.clear();
  }
}

function tokenSigner(signer: Pkcs11Signer): OfflineSigner & { label: string } {
  const key: Key = tufKeyOf(signer.publicKey);
  return { key, label: signer.label, sign: (data) => signer.sign(data) };
}
