/**
 * Device keys and certificate requests: a P-256 key made on the device (PKCS#8 PEM, never sent)
 * and a PKCS#10 CSR signed with it whose subject CN is the device ID, as DER for EST.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A fresh ECDSA P-256 private key, PKCS#8 PEM. */
export function generateDeviceKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** A CSR for `deviceId` (subject CN) signed with `keyPem`; DER bytes. */
export async function createCsr(keyPem: string, deviceId: string): Promise<Buffer> {
  const privateKey = createPrivateKey(keyPem);
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), P256, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), P256, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [deviceId] }], keys: keys as unknown as CryptoKeyPair, signingAlgorithm: SIGNING });
  return Buffer.from(csr.rawData);
}

/** The certificates of a base64 (or DER) PKCS#7 certs-only answer, as PEM, in their order. */
export function certificatesOfPkcs7(answer: string | Buffer): string[] {
  const der = typeof answer === 'string' ? Buffer.from(answer.replace(/\s+/g, ''), 'base64') : answer;
  return [...new x509.X509Certificates(new Uint8Array(der))].map((cert) => cert.toString('pem'));
}

/** Whether the certificate certifies the public half of `keyPem`. */
export function certifiesKey(certPem: string, keyPem: string): boolean {
  const certKey = new X509Certificate(certPem).publicKey.export({ format: 'der', type: 'spki' });
  return createPublicKey(keyPem).export({ format: 'der', type: 'spki' }).equals(certKey);
}
