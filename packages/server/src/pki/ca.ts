/**
 * The deployment's certificate authority as `bulwark init` creates it: an ECDSA P-256 CA and
 * the HTTPS server certificate it issues. Private keys are written sealed under the master key.
 * (Device issuance, CRLs and the offline-root hierarchy build on this.)
 */
import 'reflect-metadata';
import { webcrypto, X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { SecretBox } from '../keys/master-key.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface PkiPaths {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

export function pkiPaths(dataDir: string): PkiPaths {
  const dir = join(dataDir, 'pki');
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key.sealed'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key.sealed'),
  };
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive, as RFC 5280 requires
  return bytes.toString('hex');
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}


/** Names clients may dial the server by: localhost, loopback addresses, this host, and configured names. */
export function serverNames(extra: string[]): { dns: string[]; ips: string[] } {
  const all = new Set(['localhost', hostname(), '127.0.0.1', '::1', ...extra]);
  const ips = [...all].filter((n) => /^[\d.]+$/.test(n) || n.includes(':'));
  return { dns: [...all].filter((n) => !ips.includes(n)), ips };
}

export interface CreatePkiOptions {
  dataDir: string;
  box: SecretBox;
  organizationName: string;
  extraServerNames: string[];
  now?: Date;
}

/** Creates the CA and the server certificate unless they exist; returns the paths. */
export async function ensureDeploymentPki(options: CreatePkiOptions): Promise<{ paths: PkiPaths; created: boolean }> {
  const paths = pkiPaths(options.dataDir);
  if (existsSync(paths.caCert) && existsSync(paths.serverCert)) return { paths, created: false };
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const now = options.now ?? new Date();

  const caKeys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${options.organizationName} Bulwark Deployment CA, O=${options.organizationName}`,
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 365 * DAY_MS),
    signingAlgorithm: EC_P256,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const names = serverNames(options.extraServerNames);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=localhost, O=${options.organizationName}`,
    issuer: ca.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + 397 * DAY_MS),
    signingAlgorithm: EC_P256,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })),
        ...names.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
    ],
  });

  writeFileSync(paths.caKey, options.box.seal(await exportPkcs8Pem(caKeys.privateKey), 'pki:ca'), { mode: 0o600 });
  writeFileSync(paths.serverKey, options.box.seal(await exportPkcs8Pem(serverKeys.privateKey), 'pki:server'), { mode: 0o600 });
  writeFileSync(paths.serverCert, server.toString('pem') + '\n' + ca.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.caCert, ca.toString('pem') + '\n', { mode: 0o644 });
  return { paths, created: true };
}

export interface ServerTlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

/** Loads the server certificate chain and opens its sealed key for the HTTPS listener. */
export function loadServerTls(dataDir: string, box: SecretBox): ServerTlsMaterial {
  const paths = pkiPaths(dataDir);
  return {
    cert: readFileSync(paths.serverCert, 'utf8'),
    key: box.openText(readFileSync(paths.serverKey, 'utf8').trim(), 'pki:server'),
    ca: readFileSync(paths.caCert, 'utf8'),
  };
}

/** Days until the certificate expires (negative when expired). */
export function daysUntilExpiry(pem: string, now = Date.now()): number {
  return (new Date(new X509Certificate(pem).validTo).getTime() - now) / DAY_MS;
}
