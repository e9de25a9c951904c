/**
 * The server's half of the offline root ceremony (docs/operations.md): request a new issuing CA
 * (its key made here, sealed or on the token, kept as pending, and a CSR for the offline root),
 * import the certificate the root signed (checked against the pending key, the root and the
 * clock, then installed file by file through temporary files and renames after every check has
 * passed), move an embedded root key out of the data directory, and report where each CA key is.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '@bulwark/protocol';
import * as x509 from '@peculiar/x509';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import {
  assertKeyMatches,
  caKeyFiles,
  caKeyLocation,
  issueServerCertificate,
  openCaKey,
  pkiPaths,
  type CaKeyAccess,
  type CaKeyName,
} from './ca.js';
import { checkPassphrase } from '../keys/passphrase-keys.js';
import { offlineRootPaths, openRootKeyFile, ROOT_PASSPHRASE_SOURCE, writeRootKeyFile } from './offline-root.js';
import { EC_P256, generateCaSigner, signerSpki, type CaSigner, type SoftwareCaSigner } from './signer.js';

export const ISSUING_KINDS = ['device', 'server'] as const;
export type IssuingKind = (typeof ISSUING_KINDS)[number];

/** An issuing CA certificate offered for import that must not be installed; `code` says why. */
export class IssuingCaRefusedError extends ValidationError {
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message, details, code);
  }
}

export function checkKind(kind: string): IssuingKind {
  if (!(ISSUING_KINDS as readonly string[]).includes(kind))
    throw new ValidationError(`--kind must be one of ${ISSUING_KINDS.join(', ')}`, { kind }, 'pki.kind_invalid');
  return kind as IssuingKind;
}

const pendingName = (kind: IssuingKind): CaKeyName => `${kind}-ca-pending`;
const finalName = (kind: IssuingKind): CaKeyName => `${kind}-ca`;
const certPath = (dataDir: string, kind: IssuingKind) =>
  kind === 'device' ? pkiPaths(dataDir).deviceCaCert : pkiPaths(dataDir).serverCaCert;
export const pendingCsrPath = (dataDir: string, kind: IssuingKind) => join(pkiPaths(dataDir).dir, `${kind}-ca-pending.csr`);

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => b + '\n') ?? [];
}

export interface RequestResult {
  kind: IssuingKind;
  subject: string;
  csrPath: string;
  csrPem: string;
  keyLocation: 'data-dir' | 'hsm';
  tokenLabel: string | null;
}

/** A new issuing CA key (on the token when one is configured), kept as pending, and its CSR. */
export async function requestIssuingCa(
  dataDir: string,
  keys: CaKeyAccess,
  kind: IssuingKind,
  options: { organizationName: string; replace?: boolean },
): Promise<RequestResult> {
  const paths = pkiPaths(dataDir);
  if (!existsSync(paths.caCert)) throw new NotFoundError(`The deployment PKI in ${dataDir} (run bulwark init first)`);
  if (caKeyLocation(paths.dir, pendingName(kind)) && !options.replace) {
    throw new ConflictError(
      `A ${kind} issuing CA request is already pending (${pendingCsrPath(dataDir, kind)}): import its certificate, or run again with --replace`,
      { kind },
      'pki.request_pending',
    );
  }
  const current = existsSync(certPath(dataDir, kind))
    ? new x509.X509Certificate(readFileSync(certPath(dataDir, kind), 'utf8')).subject
    : null;
  const org = options.organizationName;
  const subject = current ?? `CN=${org} Bulwark ${kind === 'device' ? 'Device' : 'Server'} Issuing CA, O=${org}`;
  const signer = await generateCaSigner(keys.token?.() ?? null, `bulwark-${kind}-ca`);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: subject, keys: { privateKey: signer.privateKey, publicKey: signer.publicKey }, signingAlgorithm: EC_P256 },
    signer.crypto,
  );
  const csrPem = csr.toString('pem') + '\n';
  await storePendingKey(paths.dir, pendingName(kind), signer, keys);
  writeFileSync(pendingCsrPath(dataDir, kind), csrPem, { mode: 0o644 });
  return {
    kind,
    subject,
    csrPath: pendingCsrPath(dataDir, kind),
    csrPem,
    keyLocation: signer.location === 'pkcs11' ? 'hsm' : 'data-dir',
    tokenLabel: signer.tokenLabel,
  };
}

async function storePendingKey(dir: string, name: CaKeyName, signer: CaSigner, keys: CaKeyAccess): Promise<void> {
  const files = caKeyFiles(dir, name);
  if (signer.location === 'pkcs11') {
    writeFileSync(files.token, JSON.stringify({ label: signer.tokenLabel }) + '\n', { mode: 0o600 });
    rmSync(files.sealed, { force: true });
  } else {
    writeFileSync(files.sealed, keys.box.seal(await (signer as SoftwareCaSigner).exportPkcs8Pem(), `pki:${name}`), { mode: 0o600 });
    rmSync(files.token, { force: true });
  }
}

export interface ImportOptions {
  /** A new root (PEM) to trust instead of DIR/pki/ca.pem; it then replaces ca.pem. */
  rootPem?: string | undefined;
  organizationName: string;
  extraServerNames: string[];
  now?: Date;
}

export interface ImportResult {
  kind: IssuingKind;
  subject: string;
  serial: string;
  notAfter: string;
  keyLocation: 'data-dir' | 'hsm';
  rootReplaced: boolean;
  serverCertificateReissued: boolean;
}

function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new IssuingCaRefusedError(
      'pki.certificate_invalid',
      `The ${what} is not a PEM or DER X.509 certificate: ${(error as Error).message}`,
    );
  }
}

function validAt(cert: X509Certificate, now: Date, what: string): void {
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new IssuingCaRefusedError(
      'pki.certificate_not_current',
      `The ${what} is not valid now (valid from ${cert.validFrom} to ${cert.validTo})`,
      { validFrom: cert.validFrom, validTo: cert.validTo },
    );
  }
}

/** basicConstraints CA:TRUE and keyCertSign (and cRLSign for an issuing CA, which signs the CRL). */
function isCaCertificate(pem: string, needsCrlSign: boolean): boolean {
  const cert = new x509.X509Certificate(pem);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (!basic?.ca || !usage || !(usage.usages & x509.KeyUsageFlags.keyCertSign)) return false;
  return !needsCrlSign || Boolean(usage.usages & x509.KeyUsageFlags.cRLSign);
}

/** Temporary files written next to their targets, renamed into place only once all are written. */
class Staging {
  private readonly staged: { temp: string; target: string }[] = [];

  write(target: string, content: string, mode: number): void {
    const temp = `${target}.import-${process.pid}`;
    writeFileSync(temp, content, { mode });
    this.staged.push({ temp, target });
  }

  commit(): void {
    for (const { temp, target } of this.staged) renameSync(temp, target);
    this.staged.length = 0;
  }

  abandon(): void {
    for (const { temp } of this.staged) rmSync(temp, { force: true });
  }
}

/**
 * Installs the issuing CA certificate the offline root signed for the pending key: it must be a
 * CA certificate, carry the pending key, chain to the root (ca.pem, or the new root given), and be
 * valid now; otherwise nothing on disk changes. For the server CA, the HTTPS certificate is
 * reissued under it (servers pick it up when restarted).
 */
export async function importIssuingCa(
  dataDir: string,
  keys: CaKeyAccess,
  kind: IssuingKind,
  certPem: string,
  options: ImportOptions,
): Promise<ImportResult> {
  const paths = pkiPaths(dataDir);
  const now = options.now ?? new Date();
  const pending = await openCaKey(paths.dir, pendingName(kind), keys, { extractable: true });
  if (!pending) throw new NotFoundError(`A pending ${kind} issuing CA request (run bulwark pki request-issuing --kind ${kind} first)`);

  const cert = parseCertificate(certPem, 'issuing CA certificate');
  if (!isCaCertificate(cert.toString(), true)) {
    throw new IssuingCaRefusedError(
      'pki.not_a_ca',
      'The certificate is not an issuing CA certificate: it needs basicConstraints CA:TRUE and keyCertSign and cRLSign key usage',
    );
  }
  if (!cert.publicKey.export({ format: 'der', type: 'spki' }).equals(await signerSpki(pending))) {
    throw new IssuingCaRefusedError(
      'pki.key_mismatch',
      `The certificate is not for the pending ${kind} issuing CA key (${pendingCsrPath(dataDir, kind)}): it was issued for another key`,
    );
  }

  const currentRoots = pemBlocks(readFileSync(paths.caCert, 'utf8'));
  const offered = options.rootPem ? pemBlocks(options.rootPem) : [];
  if (options.rootPem && offered.length !== 1)
    throw new IssuingCaRefusedError('pki.certificate_invalid', '--root must hold exactly one certificate (PEM)');
  const anchors = (offered.length ? offered : currentRoots).map((pem) => parseCertificate(pem, 'root certificate'));
  const root = anchors.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
  if (!root) {
    throw new IssuingCaRefusedError(
      'pki.chain_invalid',
      `The certificate was not signed by ${offered.length ? 'the root given with --root' : "the deployment's root (DIR/pki/ca.pem)"}`,
      { issuer: cert.issuer },
    );
  }
  if (!root.checkIssued(root) || !root.verify(root.publicKey) || !isCaCertificate(root.toString(), false)) {
    throw new IssuingCaRefusedError('pki.chain_invalid', 'The root is not a self-signed CA certificate');
  }
  validAt(cert, now, 'issuing CA certificate');
  validAt(root, now, 'root certificate');

  const rootPem = root.toString();
  const rootReplaced = !currentRoots.some((pem) => parseCertificate(pem, 'root certificate').fingerprint256 === root.fingerprint256);
  if (rootReplaced && kind === 'server' && !existsSync(paths.deviceCaCert)) {
    throw new ConflictError(
      'The current root also issues device certificates (a data directory from before the hierarchy): import a device issuing CA under the new root first',
      {},
      'pki.root_issues_devices',
    );
  }
  const finalFiles = caKeyFiles(paths.dir, finalName(kind));
  const stage = new Staging();
  try {
    if (pending.location === 'pkcs11') stage.write(finalFiles.token, JSON.stringify({ label: pending.tokenLabel }) + '\n', 0o600);
    else
      stage.write(finalFiles.sealed, keys.box.seal(await (pending as SoftwareCaSigner).exportPkcs8Pem(), `pki:${finalName(kind)}`), 0o600);
    stage.write(certPath(dataDir, kind), cert.toString(), 0o644);
    if (kind === 'server') {
      const server = await issueServerCertificate(
        { cert: new x509.X509Certificate(cert.raw), signer: pending },
        options.organizationName,
        options.extraServerNames,
        now,
      );
      stage.write(paths.serverKey, keys.box.seal(server.keyPem, 'pki:server'), 0o600);
      stage.write(paths.serverCert, server.chainPem, 0o644);
    }
    const bundle = rootBundle(dataDir, kind, rootPem, currentRoots);
    if (bundle !== currentRoots.join('')) stage.write(paths.caCert, bundle, 0o644);
    stage.commit();
  } catch (error) {
    stage.abandon();
    throw error;
  }
  // The key's other form (sealed vs token label), the pending request, and a replaced root's key go.
  rmSync(pending.location === 'pkcs11' ? finalFiles.sealed : finalFiles.token, { force: true });
  if (rootReplaced) for (const file of Object.values(caKeyFiles(paths.dir, 'ca'))) rmSync(file, { force: true });
  for (const file of [...Object.values(caKeyFiles(paths.dir, pendingName(kind))), pendingCsrPath(dataDir, kind)])
    rmSync(file, { force: true });
  return {
    kind,
    subject: cert.subject.replace(/\n/g, ', '),
    serial: cert.serialNumber.toLowerCase(),
    notAfter: new Date(cert.validTo).toISOString(),
    keyLocation: pending.location === 'pkcs11' ? 'hsm' : 'data-dir',
    rootReplaced,
    serverCertificateReissued: kind === 'server',
  };
}

/**
 * ca.pem after an import: the root of the imported CA first, then any other root the other issuing
 * CA still chains to (during a move to a new root, until it too is reissued under it), so clients
 * keep verifying both; once both chain to the new root, the old one leaves ca.pem.
 */
function rootBundle(dataDir: string, kind: IssuingKind, importedRoot: string, currentRoots: string[]): string {
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  const other = certPath(dataDir, kind === 'device' ? 'server' : 'device');
  // A data directory from before the hierarchy: the server certificate hangs directly off the old root.
  const otherIssuer = existsSync(other) ? new X509Certificate(readFileSync(other, 'utf8')) : null;
  const stillNeeded = otherIssuer
    ? currentRoots.filter(
        (pem) => otherIssuer.checkIssued(new X509Certificate(pem)) && otherIssuer.verify(new X509Certificate(pem).publicKey),
      )
    : currentRoots;
  const seen = new Set<string>();
  return [importedRoot, ...stillNeeded].filter((pem) => !seen.has(fingerprint(pem)) && seen.add(fingerprint(pem))).join('');
}

export interface ExportRootResult {
  dir: string;
  certPath: string;
  keyPath: string;
  subject: string;
}

/**
 * Moves the embedded root key out of the data directory: passphrase-encrypted PKCS#8 in `outDir`
 * (read back and checked before the sealed key is deleted). Issuance and CRLs need only the
 * issuing CAs, so they keep working.
 */
export async function exportRoot(
  dataDir: string,
  keys: CaKeyAccess,
  outDir: string,
  passphrase: string | undefined,
): Promise<ExportRootResult> {
  const paths = pkiPaths(dataDir);
  const where = caKeyLocation(paths.dir, 'ca');
  if (!where) throw new ConflictError('The root key is not in the data directory: the root is already offline', {}, 'pki.root_offline');
  if (where.location === 'pkcs11') {
    throw new ConflictError(
      `The root key is on the PKCS#11 token (label "${where.label}") and cannot leave it: keep the root offline by keeping that token offline`,
      {},
      'pki.root_on_token',
    );
  }
  if (!existsSync(paths.deviceCaCert)) {
    throw new ConflictError(
      'This data directory predates the CA hierarchy: its root also issues device certificates. Import a device issuing CA first (bulwark pki request-issuing / import-issuing).',
      {},
      'pki.root_issues_devices',
    );
  }
  const secret = checkPassphrase(passphrase, ROOT_PASSPHRASE_SOURCE);
  const out = offlineRootPaths(outDir);
  if (existsSync(out.key) || existsSync(out.tokenKey))
    throw new ConflictError(`${outDir} already holds a root key`, { dir: outDir }, 'pki.root_exists');
  const signer = (await openCaKey(paths.dir, 'ca', keys, { extractable: true })) as SoftwareCaSigner;
  const rootPem = pemBlocks(readFileSync(paths.caCert, 'utf8'))[0]!;
  await assertKeyMatches(rootPem, signer, 'root CA');
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  chmodSync(outDir, 0o700);
  writeRootKeyFile(out.key, await signer.exportPkcs8Pem(), secret);
  writeFileSync(out.cert, rootPem, { mode: 0o644 });
  await assertKeyMatches(rootPem, (await openRootKeyFile(out.key, secret)).signer, 'exported root');
  rmSync(caKeyFiles(paths.dir, 'ca').sealed);
  return { dir: outDir, certPath: out.cert, keyPath: out.key, subject: new X509Certificate(rootPem).subject.replace(/\n/g, ', ') };
}

export interface CaStatus {
  subject: string;
  notAfter: string;
  daysLeft: number;
  keyLocation: 'data-dir' | 'hsm' | 'offline';
  tokenLabel: string | null;
}

export interface PkiStatus {
  root: CaStatus;
  /** Further roots in ca.pem during a move to a new root. */
  previousRoots: string[];
  issuing: Record<IssuingKind, (CaStatus & { pendingRequest: boolean }) | null>;
  legacy: boolean;
}

function caStatus(pem: string, where: ReturnType<typeof caKeyLocation>, now: number): CaStatus {
  const cert = new X509Certificate(pem);
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    notAfter: new Date(cert.validTo).toISOString(),
    daysLeft: Math.floor((new Date(cert.validTo).getTime() - now) / 86_400_000),
    keyLocation: !where ? 'offline' : where.location === 'pkcs11' ? 'hsm' : 'data-dir',
    tokenLabel: where?.label ?? null,
  };
}

/** Where each CA's key lives and when each CA expires (reads files only; opens no key). */
export function pkiStatus(dataDir: string, now = Date.now()): PkiStatus {
  const paths = pkiPaths(dataDir);
  if (!existsSync(paths.caCert)) throw new NotFoundError(`The deployment PKI in ${dataDir} (run bulwark init first)`);
  const [root, ...previous] = pemBlocks(readFileSync(paths.caCert, 'utf8'));
  const legacy = !existsSync(paths.deviceCaCert);
  const issuing = (kind: IssuingKind) => {
    const file = certPath(dataDir, kind);
    if (!existsSync(file)) return null;
    return {
      ...caStatus(readFileSync(file, 'utf8'), caKeyLocation(paths.dir, finalName(kind)), now),
      pendingRequest: caKeyLocation(paths.dir, pendingName(kind)) !== null,
    };
  };
  return {
    root: caStatus(root!, caKeyLocation(paths.dir, 'ca'), now),
    previousRoots: previous.map((pem) => new X509Certificate(pem).subject.replace(/\n/g, ', ')),
    issuing: { device: issuing('device'), server: issuing('server') },
    legacy,
  };
}
