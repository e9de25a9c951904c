/**
 * The root CA on an offline machine (`bulwark pki init-root`, `sign-issuing`): a directory (0700)
 * holding `root.pem` and the root's key, either passphrase-encrypted PKCS#8 (`root.key.p8`, 0600:
 * PBES2 with PBKDF2-HMAC-SHA256 at 600,000 iterations and AES-256-CBC, which openssl and node read)
 * or a key generated on a PKCS#11 token (`root.key.pkcs11` names the token and the key's label).
 * Every issuing CA it signs is also kept in `issued/SERIAL.pem`, the ceremony's record.
 */
import 'reflect-metadata';
import { createCipheriv, createPrivateKey, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { BulwarkError, ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { pkcs11Options, TokenAccess, type Pkcs11Settings } from '../keys/pkcs11.js';
import { createRootCa, signIssuingCa, writeFileAtomic, ISSUING_VALIDITY_DAYS, type CertificateAuthority } from './ca.js';
import { verifiedCsr } from './issuer.js';
import { generateCaSigner, importSoftwareSigner, tokenSigner, type SoftwareCaSigner } from './signer.js';

export const MIN_PASSPHRASE_LENGTH = 12;
const PBKDF2_ITERATIONS = 600_000;

export function offlineRootPaths(dir: string): { dir: string; cert: string; key: string; tokenKey: string; issued: string } {
  return { dir, cert: join(dir, 'root.pem'), key: join(dir, 'root.key.p8'), tokenKey: join(dir, 'root.key.pkcs11'), issued: join(dir, 'issued') };
}

/** Refuses a missing or short passphrase: it is all that protects the root key file. */
export function checkPassphrase(passphrase: string | undefined): string {
  if (!passphrase) throw new ValidationError('A passphrase is required for the root key: give --passphrase-file FILE or set BULWARK_ROOT_PASSPHRASE', {}, 'pki.passphrase_missing');
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new ValidationError(`The root key passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`, { length: passphrase.length }, 'pki.passphrase_weak');
  }
  return passphrase;
}

function tlv(tag: number, body: Buffer): Buffer {
  if (body.length < 0x80) return Buffer.concat([Buffer.from([tag, body.length]), body]);
  const length = Buffer.from(body.length.toString(16).padStart(body.length > 0xff ? 4 : 2, '0'), 'hex');
  return Buffer.concat([Buffer.from([tag, 0x80 | length.length]), length, body]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const octets = (b: Buffer) => tlv(0x04, b);
const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
function integer(n: number): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return tlv(0x02, Buffer.from(hex, 'hex'));
}

const PBES2 = '2a864886f70d01050d';
const PBKDF2 = '2a864886f70d01050c';
const HMAC_SHA256 = '2a864886f70d0209';
const AES_256_CBC = '60864801650304012a';

/** PKCS#8 (DER) encrypted under the passphrase as an EncryptedPrivateKeyInfo PEM (RFC 8018 PBES2). */
export function encryptPkcs8(pkcs8Der: Buffer, passphrase: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(passphrase, salt, PBKDF2_ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  const der = seq(
    seq(oid(PBES2), seq(seq(oid(PBKDF2), seq(octets(salt), integer(PBKDF2_ITERATIONS), integer(32), seq(oid(HMAC_SHA256), Buffer.from([0x05, 0x00])))), seq(oid(AES_256_CBC), octets(iv)))),
    octets(encrypted),
  );
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

/** Opens a passphrase-encrypted PKCS#8 PEM as an exportable software signer. */
export async function decryptPkcs8(pem: string, passphrase: string): Promise<SoftwareCaSigner> {
  let der: Buffer;
  try {
    der = createPrivateKey({ key: pem, format: 'pem', passphrase }).export({ format: 'der', type: 'pkcs8' });
  } catch {
    throw new ValidationError('The passphrase does not open the root key', {}, 'pki.passphrase_wrong');
  }
  return importSoftwareSigner(`-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`, true);
}

/** Where the root key is: a passphrase for the file, or the token (with its PIN in the environment). */
export interface RootKeyOptions {
  passphrase?: string | undefined;
  hsm?: Pkcs11Settings | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface OfflineRoot extends CertificateAuthority {
  /** Closes the token session, if the key is on one. */
  close(): void;
}

/** Creates the root CA in an empty offline directory (ECDSA P-256, pathLen 1, 20 years). */
export async function initOfflineRoot(dir: string, name: string, options: RootKeyOptions, now = new Date()): Promise<{ cert: x509.X509Certificate; keyLocation: 'file' | 'pkcs11'; paths: ReturnType<typeof offlineRootPaths> }> {
  const paths = offlineRootPaths(dir);
  if (existsSync(paths.cert) || existsSync(paths.key) || existsSync(paths.tokenKey)) throw new ConflictError(`${dir} already holds a root CA; use another directory`, { dir }, 'pki.root_exists');
  const passphrase = options.hsm ? undefined : checkPassphrase(options.passphrase);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const access = options.hsm ? new TokenAccess(() => pkcs11Options(options.hsm!, options.env)) : null;
  try {
    const signer = await generateCaSigner(access?.get() ?? null, 'bulwark-offline-root');
    const root = await createRootCa(name, now, signer);
    if (access) {
      writeFileSync(paths.tokenKey, JSON.stringify({ module: options.hsm!.module, tokenLabel: options.hsm!.tokenLabel, pinEnv: options.hsm!.pinEnv, label: signer.tokenLabel }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    } else {
      const pkcs8 = x509.PemConverter.decodeFirst(await (signer as SoftwareCaSigner).exportPkcs8Pem());
      writeFileSync(paths.key, encryptPkcs8(Buffer.from(pkcs8), passphrase!), { mode: 0o600, flag: 'wx' });
    }
    writeFileSync(paths.cert, root.cert.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
    return { cert: root.cert, keyLocation: access ? 'pkcs11' : 'file', paths };
  } finally {
    access?.close();
  }
}

/** Opens the offline root for signing. */
export async function openOfflineRoot(dir: string, options: RootKeyOptions): Promise<OfflineRoot> {
  const paths = offlineRootPaths(dir);
  if (!existsSync(paths.cert)) throw new NotFoundError(`Root CA in ${dir} (root.pem)`);
  const cert = new x509.X509Certificate(readFileSync(paths.cert, 'utf8'));
  if (existsSync(paths.tokenKey)) {
    const recorded = JSON.parse(readFileSync(paths.tokenKey, 'utf8')) as Pkcs11Settings & { label: string };
    const access = new TokenAccess(() => pkcs11Options(recorded, options.env));
    try {
      return { cert, signer: await tokenSigner(access.get().signer(recorded.label)), close: () => access.close() };
    } catch (error) {
      access.close();
      throw error;
    }
  }
  if (!existsSync(paths.key)) throw new NotFoundError(`Root CA key in ${dir} (root.key.p8 or root.key.pkcs11)`);
  const signer = await decryptPkcs8(readFileSync(paths.key, 'utf8'), checkPassphrase(options.passphrase));
  return { cert, signer, close: () => undefined };
}

/**
 * Signs an issuing CA from its CSR (whose signature and key are checked: ECDSA P-256 or P-384),
 * keeps a copy in `issued/`, and returns the certificate.
 */
export async function signIssuingCsr(root: OfflineRoot, dir: string, csrPem: string, days = ISSUING_VALIDITY_DAYS, now = new Date()): Promise<x509.X509Certificate> {
  if (!Number.isInteger(days) || days < 1) throw new ValidationError('--days must be a positive whole number', { days }, 'pki.days_invalid');
  const { csr } = await verifiedCsr(csrPem, { caKey: true }).catch((error: unknown) => {
    // Bad input on the command line: exit code 2, with the issuer's own code.
    if (error instanceof BulwarkError && error.status === 400) throw new ValidationError(error.message, error.details, error.code);
    throw error;
  });
  if (!csr.subjectName.getField('CN').length) throw new ValidationError('The CSR must name the issuing CA in its subject CN', {}, 'pki.csr_invalid');
  const cert = await signIssuingCa(root, csr.subjectName, csr.publicKey, now, days);
  const issued = offlineRootPaths(dir).issued;
  mkdirSync(issued, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(issued, `${cert.serialNumber}.pem`), cert.toString('pem') + '\n', 0o644);
  return cert;
}
