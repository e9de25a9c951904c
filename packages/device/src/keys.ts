/**
 * Device keys and certificate requests: a P-256 key made on the device (PKCS#8 PEM, never sent)
 * or held on a PKCS#11 token (a Pkcs11Key: never leaves the token), a PKCS#10 CSR signed with it
 * whose subject CN is the device ID, as DER for EST, and the TLS options that present it.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { Pkcs11Key } from './pkcs11.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A device private key: PKCS#8 PEM, or a key pair on a PKCS#11 token. */
export type DeviceKey = string | Pkcs11Key;

/** A fresh ECDSA P-256 private key, PKCS#8 PEM. */
export function generateDeviceKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** A CSR for `deviceId` (subject CN) signed with `key` (in software, or on its token); DER bytes. */
export async function createCsr(key: DeviceKey, deviceId: string): Promise<Buffer> {
  const publicKey = await webcrypto.subtle.importKey('spki', publicKeyOf(key).export({ format: 'der', type: 'spki' }), P256, true, [
    'verify',
  ]);
  const privateKey =
    typeof key === 'string'
      ? await webcrypto.subtle.importKey('pkcs8', createPrivateKey(key).export({ format: 'der', type: 'pkcs8' }), P256, false, ['sign'])
      : // The generator reads only `algorithm` from the signing key and passes it to `crypto.subtle.sign`.
        { type: 'private', extractable: false, algorithm: P256, usages: ['sign'] };
  const keys = { privateKey, publicKey } as unknown as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: [{ CN: [deviceId] }], keys, signingAlgorithm: SIGNING },
    typeof key === 'string' ? undefined : tokenCrypto(key),
  );
  return Buffer.from(csr.rawData);
}

/** Node's WebCrypto, except that `subtle.sign` signs on the token with `key` (ECDSA P-256, SHA-256). */
function tokenCrypto(key: Pkcs11Key): Crypto {
  const subtle = new Proxy(webcrypto.subtle, {
    get(target, property) {
      if (property === 'sign') {
        return async (_algorithm: unknown, _key: unknown, data: BufferSource): Promise<ArrayBuffer> => {
          const bytes = ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
          return new Uint8Array(key.sign(bytes)).buffer;
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    subtle,
    getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
    randomUUID: webcrypto.randomUUID.bind(webcrypto),
  } as unknown as Crypto;
}

/** The certificates of a base64 (or DER) PKCS#7 certs-only answer, as PEM, in their order. */
export function certificatesOfPkcs7(answer: string | Buffer): string[] {
  const der = typeof answer === 'string' ? Buffer.from(answer.replace(/\s+/g, ''), 'base64') : answer;
  return [...new x509.X509Certificates(new Uint8Array(der))].map((cert) => cert.toString('pem'));
}

/** The public half of a device key. */
export function publicKeyOf(key: DeviceKey): KeyObject {
  return typeof key === 'string' ? createPublicKey(key) : key.publicKey;
}

/** Whether the certificate certifies the public half of `key`. */
export function certifiesKey(certPem: string, key: DeviceKey): boolean {
  const certKey = new X509Certificate(certPem).publicKey.export({ format: 'der', type: 'spki' });
  return publicKeyOf(key).export({ format: 'der', type: 'spki' }).equals(certKey);
}

/** TLS client options presenting `cert` with `key` and trusting `ca`: a token key comes as a secure context. */
export type ClientTlsOptions = { ca: string; cert: string; key: string } | { secureContext: SecureContext };

/** The options for tls.connect / https.request; throws a Pkcs11Error when the token key cannot be loaded. */
export function clientTlsOptions(ca: string, cert: string, key: DeviceKey): ClientTlsOptions {
  return typeof key === 'string' ? { ca, cert, key } : { secureContext: key.secureContext(ca, cert) };
}

/** An ECDSA SHA-256 signature of `data` by `key`, DER-encoded (as node:crypto's `sign` makes it). */
export function signDer(key: DeviceKey, data: Buffer): Buffer {
  if (typeof key === 'string') return sign('sha256', data, key);
  // The token signs in IEEE P1363 (r|s); @peculiar/x509's formatter makes the DER ECDSA-Sig-Value.
  const der = new x509.AsnEcSignatureFormatter().toAsnSignature({ ...P256, ...SIGNING }, new Uint8Array(key.sign(data)));
  if (!der) throw new Error('ECDSA P-256 signature could not be DER-encoded');
  return Buffer.from(der);
}
