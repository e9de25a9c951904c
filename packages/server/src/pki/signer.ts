/**
 * A CA's private key, wherever it lives: in software (a WebCrypto key, PKCS#8 sealed under the
 * master key at rest) or on a PKCS#11 token (a Pkcs11Signer: the key never leaves the token).
 *
 * @peculiar/x509's generators take an optional `crypto` and call `crypto.subtle.sign(algorithm,
 * signingKey, tbs)` with whatever was passed as `signingKey`, reading only `signingKey.algorithm`
 * to name the signature algorithm. A token key is therefore a plain object carrying that
 * algorithm, and its `crypto` sends `sign` for such keys to the token (ECDSA there returns IEEE
 * P1363 r|s, as WebCrypto does, which the library converts to DER) and everything else (digest,
 * exportKey, getRandomValues) to node's WebCrypto.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { KeyCustodyError } from '../keys/custody.js';
import type { Pkcs11Signer, Pkcs11Token } from '../keys/pkcs11.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export type CaKeyLocation = 'software' | 'pkcs11';

export interface CaSigner {
  readonly location: CaKeyLocation;
  /** The token object's label (pkcs11), or null. */
  readonly tokenLabel: string | null;
  /** What the x509 generators take as `signingKey`. */
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** What the x509 generators take as `crypto`. */
  readonly crypto: Crypto;
}

/** A software CA key, whose PKCS#8 can be exported (to seal it, or to move it offline). */
export interface SoftwareCaSigner extends CaSigner {
  readonly location: 'software';
  exportPkcs8Pem(): Promise<string>;
}

const subtle = webcrypto.subtle as unknown as SubtleCrypto;

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;
}

function softwareSigner(keys: CryptoKeyPair): SoftwareCaSigner {
  return {
    location: 'software',
    tokenLabel: null,
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    crypto: webcrypto as unknown as Crypto,
    async exportPkcs8Pem() {
      if (!keys.privateKey.extractable)
        throw new KeyCustodyError('This CA key was opened for signing only and cannot be exported', 'keys.not_exportable');
      return pem('PRIVATE KEY', Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey)));
    },
  };
}

/** A fresh ECDSA P-256 key pair in software (extractable, so it can be sealed). */
export async function generateSoftwareSigner(): Promise<SoftwareCaSigner> {
  return softwareSigner((await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair);
}

/** Opens a PKCS#8 (PEM) ECDSA P-256 private key; `extractable` only for keys that are to be moved. */
export async function importSoftwareSigner(pkcs8Pem: string, extractable = false): Promise<SoftwareCaSigner> {
  const der = x509.PemConverter.decodeFirst(pkcs8Pem);
  const privateKey = await subtle.importKey('pkcs8', der, EC_P256, true, ['sign']);
  // WebCrypto derives no public key from a private one: the JWK export carries x and y.
  const { d: _d, key_ops: _ops, ...jwk } = await subtle.exportKey('jwk', privateKey);
  const publicKey = await subtle.importKey('jwk', jwk, EC_P256, true, ['verify']);
  const signingKey = extractable ? privateKey : await subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  return softwareSigner({ privateKey: signingKey, publicKey });
}

/** Token keys by the stand-in object handed to the x509 generators. */
const tokenKeys = new WeakMap<object, Pkcs11Signer>();

function isSha256(algorithm: AlgorithmIdentifier | EcdsaParams): boolean {
  const hash = typeof algorithm === 'object' && 'hash' in algorithm ? algorithm.hash : undefined;
  const name = typeof hash === 'string' ? hash : (hash as { name?: string } | undefined)?.name;
  return name === undefined || name.toUpperCase() === 'SHA-256';
}

const tokenSubtle = new Proxy(subtle, {
  get(target, property) {
    if (property === 'sign') {
      return async (algorithm: AlgorithmIdentifier | EcdsaParams, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer> => {
        const signer = tokenKeys.get(key);
        if (!signer) return target.sign(algorithm, key, data);
        if (!isSha256(algorithm)) throw new KeyCustodyError('Token CA keys sign with ECDSA over SHA-256 only', 'keys.hsm_unsupported');
        const bytes = ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
        const signature = signer.sign(bytes);
        return signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer;
      };
    }
    const value = Reflect.get(target, property, target) as unknown;
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
  },
});

/** Node's WebCrypto, except that `subtle.sign` with a token key signs on the token. */
export const tokenCrypto: Crypto = {
  subtle: tokenSubtle,
  getRandomValues: <T extends ArrayBufferView | null>(array: T): T => webcrypto.getRandomValues(array as never) as T,
  randomUUID: () => webcrypto.randomUUID(),
} as Crypto;

/** A CA signer for a P-256 key pair on the token. */
export async function tokenSigner(signer: Pkcs11Signer): Promise<CaSigner> {
  if (signer.algorithm !== 'ecdsa-p256')
    throw new KeyCustodyError(`Token key "${signer.label}" is ${signer.algorithm}; CA keys are ECDSA P-256`, 'keys.hsm_unsupported');
  const spki = signer.publicKey.export({ format: 'der', type: 'spki' });
  const publicKey = await subtle.importKey('spki', spki, EC_P256, true, ['verify']);
  const privateKey = {
    type: 'private',
    extractable: false,
    algorithm: { name: 'ECDSA', namedCurve: 'P-256' },
    usages: ['sign'],
  } as unknown as CryptoKey;
  tokenKeys.set(privateKey, signer);
  return { location: 'pkcs11', tokenLabel: signer.label, privateKey, publicKey, crypto: tokenCrypto };
}

/** A new CA key: on the token when one is given (label `prefix-<random>`), else in software. */
export async function generateCaSigner(token: Pkcs11Token | null, labelPrefix: string): Promise<CaSigner> {
  if (!token) return generateSoftwareSigner();
  const label = `${labelPrefix}-${Buffer.from(webcrypto.getRandomValues(new Uint8Array(6))).toString('hex')}`;
  return tokenSigner(token.generateKeyPair('ecdsa-p256', label));
}

/** The signer's public key as DER SubjectPublicKeyInfo (to compare with a certificate's). */
export async function signerSpki(signer: CaSigner): Promise<Buffer> {
  return Buffer.from(await subtle.exportKey('spki', signer.publicKey));
}
