/**
 * The deployment's CA hierarchy as `bulwark init` creates it: an ECDSA P-256 root CA (pathLen 1),
 * a device issuing CA and a server issuing CA signed by it, and the HTTPS server certificate the
 * server issuing CA issues. Each CA key is either sealed under the master key (`NAME.key.sealed`)
 * or generated on the PKCS#11 token (`NAME.key.pkcs11` records only its label); the root's key
 * may also be absent: the root then lives offline (`bulwark pki export-root`, pki/ceremony.ts).
 * Data directories made before the hierarchy existed keep their single CA, which then also issues
 * device certificates.
 */
import 'reflect-metadata';
import { webcrypto, X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { SecretBox } from '../keys/master-key.js';
import { KeyCustodyError } from '../keys/custody.js';
import type { Pkcs11Token } from '../keys/pkcs11.js';
import {
  EC_P256,
  generateCaSigner,
  generateSoftwareSigner,
  importSoftwareSigner,
  signerSpki,
  tokenSigner,
  type CaKeyLocation,
  type CaSigner,
} from './signer.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const DAY_MS = 86_400_000;
export const ROOT_VALIDITY_DAYS = 20 * 365;
export const ISSUING_VALIDITY_DAYS = 10 * 365;

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

/** The CA keys of a data directory, by file name stem: `ca` (the root), the issuing CAs, and pending ones. */
export type CaKeyName = 'ca' | 'device-ca' | 'server-ca' | 'device-ca-pending' | 'server-ca-pending';

/** A CA key at rest: `NAME.key.sealed` (PKCS#8 sealed with context `pki:NAME`) or `NAME.key.pkcs11` (`{ "label" }`). */
export function caKeyFiles(dir: string, name: CaKeyName): { sealed: string; token: string } {
  return { sealed: join(dir, `${name}.key.sealed`), token: join(dir, `${name}.key.pkcs11`) };
}

/** What opening a CA key needs: the master key for sealed keys, the token for token keys. */
export interface CaKeyAccess {
  box: SecretBox;
  /** The configured token, opened on first use; null when no token is configured. */
  token: (() => Pkcs11Token) | null;
}

/** Writes through a temporary file and a rename: a reader sees the old file or the new one. */
export function writeFileAtomic(path: string, content: string, mode: number): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, content, { mode });
  renameSync(temp, path);
}

/** Where a CA key is kept, or null when the data directory does not hold it (an offline root). */
export function caKeyLocation(dir: string, name: CaKeyName): { location: CaKeyLocation; label: string | null } | null {
  const files = caKeyFiles(dir, name);
  if (existsSync(files.token))
    return { location: 'pkcs11', label: (JSON.parse(readFileSync(files.token, 'utf8')) as { label: string }).label };
  if (existsSync(files.sealed)) return { location: 'software', label: null };
  return null;
}

/** Keeps a CA key in the data directory: sealed PKCS#8, or the label of the key on the token. */
export async function storeCaKey(dir: string, name: CaKeyName, signer: CaSigner, box: SecretBox): Promise<void> {
  const files = caKeyFiles(dir, name);
  if (signer.location === 'pkcs11') {
    writeFileAtomic(files.token, JSON.stringify({ label: signer.tokenLabel }) + '\n', 0o600);
    rmSync(files.sealed, { force: true });
    return;
  }
  if (!('exportPkcs8Pem' in signer)) throw new KeyCustodyError('A software CA key must be exportable to be sealed', 'keys.not_exportable');
  writeFileAtomic(files.sealed, box.seal(await (signer as { exportPkcs8Pem(): Promise<string> }).exportPkcs8Pem(), `pki:${name}`), 0o600);
  rmSync(files.token, { force: true });
}

/** Opens a CA key of the data directory for signing, or null when it is not there. */
export async function openCaKey(
  dir: string,
  name: CaKeyName,
  keys: CaKeyAccess,
  options: { extractable?: boolean } = {},
): Promise<CaSigner | null> {
  const where = caKeyLocation(dir, name);
  if (!where) return null;
  if (where.location === 'software')
    return importSoftwareSigner(
      keys.box.openText(readFileSync(caKeyFiles(dir, name).sealed, 'utf8').trim(), `pki:${name}`),
      options.extractable,
    );
  if (!keys.token) {
    throw new KeyCustodyError(
      `The ${name} key is on a PKCS#11 token (label "${where.label}") but keys.pkcs11 is not configured`,
      'keys.hsm_not_configured',
    );
  }
  return tokenSigner(keys.token().signer(where.label!));
}

/** Throws unless the signer holds the private key of the certificate's public key. */
export async function assertKeyMatches(certPem: string, signer: CaSigner, what: string): Promise<void> {
  const spki = new X509Certificate(certPem).publicKey.export({ format: 'der', type: 'spki' });
  if (!spki.equals(await signerSpki(signer)))
    throw new KeyCustodyError(`The ${what} key does not match its certificate`, 'keys.ca_key_mismatch');
}

/** A random positive 128-bit serial in minimal DER form (RFC 5280: positive, at most 20 octets). */
export function serialNumber(): string {
  for (;;) {
    const bytes = randomBytes(16);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
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
  /** When given, the root and issuing CA keys are generated on this token and never leave it. */
  token?: Pkcs11Token | null;
  organizationName: string;
  extraServerNames: string[];
  now?: Date;
}

const names = (org: string) => ({
  root: `CN=${org} Bulwark Root CA, O=${org}`,
  device: `CN=${org} Bulwark Device Issuing CA, O=${org}`,
  server: `CN=${org} Bulwark Server Issuing CA, O=${org}`,
});

/** Creates the CA hierarchy and the server certificate unless they exist; returns the paths. */
export async function ensureDeploymentPki(options: CreatePkiOptions): Promise<{ paths: PkiPaths; created: boolean }> {
  const paths = pkiPaths(options.dataDir);
  if (existsSync(paths.caCert) && existsSync(paths.serverCert)) return { paths, created: false };
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const now = options.now ?? new Date();
  const token = options.token ?? null;
  const subject = names(options.organizationName);

  const root = await createRootCa(subject.root, now, await generateCaSigner(token, 'bulwark-root-ca'));
  const deviceCa = await createIssuingCa(root, subject.device, now, await generateCaSigner(token, 'bulwark-device-ca'));
  const serverCa = await createIssuingCa(root, subject.server, now, await generateCaSigner(token, 'bulwark-server-ca'));
  const server = await issueServerCertificate(serverCa, options.organizationName, options.extraServerNames, now);

  await storeCaKey(paths.dir, 'ca', root.signer, options.box);
  await storeCaKey(paths.dir, 'device-ca', deviceCa.signer, options.box);
  await storeCaKey(paths.dir, 'server-ca', serverCa.signer, options.box);
  writeFileSync(paths.serverKey, options.box.seal(server.keyPem, 'pki:server'), { mode: 0o600 });
  writeFileSync(paths.deviceCaCert, deviceCa.cert.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.serverCaCert, serverCa.cert.toString('pem') + '\n', { mode: 0o644 });
  writeFileSync(paths.serverCert, server.chainPem, { mode: 0o644 });
  writeFileSync(paths.caCert, root.cert.toString('pem') + '\n', { mode: 0o644 });
  return { paths, created: true };
}

export interface CertificateAuthority {
  cert: x509.X509Certificate;
  signer: CaSigner;
}

/** The HTTPS server certificate (397 days) for the names clients dial, under the server issuing CA. */
export async function issueServerCertificate(
  serverCa: CertificateAuthority,
  organizationName: string,
  extraServerNames: string[],
  now: Date,
): Promise<{ chainPem: string; keyPem: string }> {
  const serverKey = await generateSoftwareSigner();
  const dialled = serverNames(extraServerNames);
  const server = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=localhost, O=${organizationName}`,
      issuer: serverCa.cert.subject,
      notBefore: now,
      notAfter: new Date(now.getTime() + 397 * DAY_MS),
      signingAlgorithm: EC_P256,
      publicKey: serverKey.publicKey,
      signingKey: serverCa.signer.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...dialled.dns.map((value) => ({ type: 'dns' as const, value })),
          ...dialled.ips.map((value) => ({ type: 'ip' as const, value })),
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(serverCa.cert),
        await x509.SubjectKeyIdentifierExtension.create(serverKey.publicKey),
      ],
    },
    serverCa.signer.crypto,
  );
  return { chainPem: server.toString('pem') + '\n' + serverCa.cert.toString('pem') + '\n', keyPem: await serverKey.exportPkcs8Pem() };
}

/** A self-signed root: long-lived, and allowed one level of issuing CAs below it. */
export async function createRootCa(name: string, now: Date, signer?: CaSigner): Promise<CertificateAuthority> {
  const key = signer ?? (await generateSoftwareSigner());
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: name,
      issuer: name,
      notBefore: now,
      notAfter: new Date(now.getTime() + ROOT_VALIDITY_DAYS * DAY_MS),
      signingAlgorithm: EC_P256,
      publicKey: key.publicKey,
      signingKey: key.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(key.publicKey),
      ],
    },
    key.crypto,
  );
  return { cert, signer: key };
}

/**
 * Signs an issuing CA certificate under the root: end-entity certificates only (pathLen 0),
 * keyCertSign and cRLSign, AKI/SKI; never past the root's own expiry.
 */
export async function signIssuingCa(
  root: CertificateAuthority,
  subject: string | x509.Name,
  publicKey: CryptoKey | x509.PublicKey,
  now: Date,
  days = ISSUING_VALIDITY_DAYS,
): Promise<x509.X509Certificate> {
  const notAfter = new Date(Math.min(now.getTime() + days * DAY_MS, root.cert.notAfter.getTime()));
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject,
      issuer: root.cert.subjectName,
      notBefore: now,
      notAfter,
      signingAlgorithm: EC_P256,
      publicKey,
      signingKey: root.signer.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.AuthorityKeyIdentifierExtension.create(root.cert, false, root.signer.crypto),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, root.signer.crypto),
      ],
    },
    root.signer.crypto,
  );
}

/** An issuing CA with a fresh key (or the one given), signed by the root. */
export async function createIssuingCa(
  root: CertificateAuthority,
  name: string,
  now: Date,
  signer?: CaSigner,
): Promise<CertificateAuthority> {
  const key = signer ?? (await generateSoftwareSigner());
  return { cert: await signIssuingCa(root, name, key.publicKey, now), signer: key };
}

export interface IssuingCa {
  /** The issuing CA's certificate (PEM). */
  cert: string;
  /** Its key, opened for signing (software or on the token). */
  signer: CaSigner;
  /** The issuing CA then the root: what a client needs besides the root it trusts. */
  chain: string;
  /** The root clients trust (DIR/pki/ca.pem). */
  root: string;
  /** True on a data directory from before the hierarchy: the single CA issues devices too. */
  legacy: boolean;
}

/** Loads the device issuing CA (or, on a pre-hierarchy data directory, the single CA). */
export async function loadDeviceIssuingCa(dataDir: string, keys: CaKeyAccess): Promise<IssuingCa> {
  const paths = pkiPaths(dataDir);
  const root = readFileSync(paths.caCert, 'utf8');
  const legacy = !existsSync(paths.deviceCaCert);
  const cert = legacy ? root : readFileSync(paths.deviceCaCert, 'utf8');
  const name: CaKeyName = legacy ? 'ca' : 'device-ca';
  const signer = await openCaKey(paths.dir, name, keys);
  if (!signer)
    throw new KeyCustodyError(
      `The device issuing CA key (${name}) is not in ${paths.dir}: import a device issuing CA (bulwark pki import-issuing)`,
      'keys.ca_key_missing',
    );
  await assertKeyMatches(cert, signer, 'device issuing CA');
  return { cert, signer, chain: legacy ? root : cert + root, root, legacy };
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
