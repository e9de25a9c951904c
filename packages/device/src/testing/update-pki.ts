/**
 * For the update agent's tests: a small real PKI (a root CA, a `localhost` server certificate and
 * device certificates whose subject CN is the device ID), and an identity directory laid out as
 * the SDK's IdentityStore expects (device.key 0600, device.pem, ca.pem).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { CA_FILE, CERT_FILE, KEY_FILE } from '../identity.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface Issued {
  cert: string;
  key: string;
}

export interface TestPki {
  ca: string;
  server: Issued;
  /** A device certificate for `deviceId` (CN), issued by the same CA. */
  device(deviceId: string): Promise<Issued>;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pemOf(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

let serial = 1;

export async function makeTestPki(): Promise<TestPki> {
  const caKeys = await keyPair();
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 86_400_000);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Bulwark update test root',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const issue = async (subject: string, extensions: x509.Extension[]): Promise<Issued> => {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (++serial).toString(16).padStart(2, '0'),
      subject,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: SIGNING,
      extensions,
    });
    return { cert: cert.toString('pem'), key: await pemOf(keys.privateKey) };
  };
  const server = await issue('CN=localhost', [
    new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ]);
  return {
    ca: caCert.toString('pem'),
    server,
    device: (deviceId) => issue(`CN=${deviceId}`, [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])]),
  };
}

/** Writes an identity directory (as enrollment would leave it) and returns its path. */
export function writeIdentity(dir: string, ca: string, device: Issued): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, KEY_FILE), device.key);
  chmodSync(join(dir, KEY_FILE), 0o600);
  writeFileSync(join(dir, CERT_FILE), device.cert);
  writeFileSync(join(dir, CA_FILE), ca);
  return dir;
}
