/**
 * The deployment's CA hierarchy as `bulwark init` creates it: an ECDSA P-256 root CA (pathLen 1),
 * a device issuing CA and a server issuing CA signed by it, and the HTTPS server certificate the
 * server issuing CA issues. Private keys are written sealed under the master key (the root's too,
 * until it can be moved offline or into the HSM). Data directories made before the hierarchy
 * existed keep their single CA, which then also issues device certificates.
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
  deviceCaCert: string;
  deviceCaKey: string;
  serverCaCert: string;
  serverCaKey: string;
}

export function pkiPaths(dataDir: string): PkiPaths {
  const dir = join(dataDir, 'pki');
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key.sealed'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key.sealed'),
    deviceCaCert: join(dir, 'device-ca.pem'),
    deviceCaKey: join(dir, 'device-ca.key.sealed'),
    serverCaCert: join(dir, 'server-ca.pem'),
    serverCaKey: join(dir, 'server-ca.key.sealed'),
  };
}

/** A random positive 128-bit serial in minimal DER form (RFC 5280: positive, at most 20 octets). */
export function serialNumber(): string {
  for (;;) {
    const bytes = randomBytes(16);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
}

export async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
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

  const root = await createRootCa(`CN=${options.organizationName} Bulwark Root CA, O=${options.organizationName}`, now);
  const deviceCa = await createIssuingCa(root, `CN=${options.organizationName} Bulwark Device Issuing CA, O=${options.organizationName}`, now);
  const serverCa = await createIssuingCa(root, `CN=${options.organizationName} Bulwark Server Issuing CA, O=${options.organizationName}`, now);

  const serverKeys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const names = serverNames(options.extraServerNames);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=localhost, O=${options.organizationName}`,
    issuer: serverCa.cert.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + 397 * DAY_MS),
    signingAlgorithm: EC_P256,
    publicKey: serverKeys.publicKey,
    signingKey: serverCa.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })),
        ...names.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(serverCa.cert),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
    ],
  });

  writeFileSync(paths.caKey, options.box.seal(await exportPkcs8Pem(root.keys.privateKey), 'pki:ca'), { mode: 0o600 });
  writeFileSync(paths.deviceCaKey, options.box.seal(await exportPkcs8Pem(deviceCa.keys.privateKey), 'pki:device-ca'), { mode: 0o600 });
  writeFileSync(paths.serverCaKey, options.box.seal(await exportPkcs8Pem(serverCa.keys.privateKey), 'pki:server-ca'), { mode: 0o600 });
  writeFileSync(paths.serverKey, options.box.seal(await exportPkcs8Pem(serverKeys.privateKey), 'pki:server'), { mode: 0o600 });
  writeFileSync(paths.deviceCaCert, deviceCa.cert.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.serverCaCert, serverCa.cert.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.serverCert, server.toString('pem') + '\n' + serverCa.cert.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.caCert, root.cert.toString('pem') + '\n', { mode: 0o644 });
  return { paths, created: true };
}

export interface CertificateAuthority {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

function generateP256(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']) as unknown as Promise<CryptoKeyPair>;
}

/** A self-signed root: long-lived, and allowed one level of issuing CAs below it. */
export async function createRootCa(name: string, now: Date): Promise<CertificateAuthority> {
  const keys = await generateP256();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name,
    notBefore: now,
    notAfter: new Date(now.getTime() + 20 * 365 * DAY_MS),
    signingAlgorithm: EC_P256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/** An issuing CA signed by the root: issues end-entity certificates only (pathLen 0). */
export async function createIssuingCa(root: CertificateAuthority, name: string, now: Date): Promise<CertificateAuthority> {
  const keys = await generateP256();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: name,
    issuer: root.cert.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 365 * DAY_MS),
    signingAlgorithm: EC_P256,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

export interface IssuingCaMaterial {
  /** The issuing CA's certificate (PEM). */
  cert: string;
  /** Its private key, PKCS#8 PEM, opened from the sealed file. */
  key: string;
  /** The issuing CA then the root: what a client needs besides the root it trusts. */
  chain: string;
  /** The root clients trust (DIR/pki/ca.pem). */
  root: string;
  /** True on a data directory from before the hierarchy: the single CA issues devices too. */
  legacy: boolean;
}

/** Loads the device issuing CA (or, on a pre-hierarchy data directory, the single CA). */
export function loadDeviceIssuingCa(dataDir: string, box: SecretBox): IssuingCaMaterial {
  const paths = pkiPaths(dataDir);
  const root = readFileSync(paths.caCert, 'utf8');
  if (!existsSync(paths.deviceCaCert)) {
    return { cert: root, key: box.openText(readFileSync(paths.caKey, 'utf8').trim(), 'pki:ca'), chain: root, root, legacy: true };
  }
  const cert = readFileSync(paths.deviceCaCert, 'utf8');
  return { cert, key: box.openText(readFileSync(paths.deviceCaKey, 'utf8').trim(), 'pki:device-ca'), chain: cert + root, root, legacy: false };
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
