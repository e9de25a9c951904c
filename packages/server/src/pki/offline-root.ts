/**
 * The root CA on an offline machine (`bulwark pki init-root`, `sign-issuing`): a directory (0700)
 * holding `root.pem` and the root's key, either passphrase-encrypted PKCS#8 (`root.key.p8`, 0600,
 * written and read by keys/passphrase-keys.ts like the firmware keys; `rekey-root` re-encrypts it)
 * or a key generated on a PKCS#11 token (`root.key.pkcs11` names the token and the key's label).
 * Every issuing CA it signs is also kept in `issued/SERIAL.pem`, the ceremony's record.
 */
import 'reflect-metadata';
import { createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { BulwarkError, ConflictError, NotFoundError, ValidationError } from '../errors.js';
import {
  checkPassphrase,
  encryptPrivateKey,
  openKeyFile,
  rekeyFiles,
  requirePassphrase,
  shellWord,
  writeNewKeyFile,
  type RekeyResult,
} from '../keys/passphrase-keys.js';
import { pkcs11Options, TokenAccess, type Pkcs11Settings } from '../keys/pkcs11.js';
import { createRootCa, signIssuingCa, writeFileAtomic, ISSUING_VALIDITY_DAYS, type CertificateAuthority } from './ca.js';
import { verifiedCsr } from './issuer.js';
import { generateCaSigner, importSoftwareSigner, tokenSigner, type SoftwareCaSigner } from './signer.js';

/** Where the root key's passphrase comes from, for messages. */
export const ROOT_PASSPHRASE_SOURCE = 'give --passphrase-file FILE or set BULWARK_ROOT_PASSPHRASE';

export function offlineRootPaths(dir: string): { dir: string; cert: string; key: string; tokenKey: string; issued: string } {
  return {
    dir,
    cert: join(dir, 'root.pem'),
    key: join(dir, 'root.key.p8'),
    tokenKey: join(dir, 'root.key.pkcs11'),
    issued: join(dir, 'issued'),
  };
}

/** The command that re-encrypts the root key file of DIR at the current policy. */
const rootRekeyCommand = (dir: string) => `bulwark pki rekey-root --dir ${shellWord(dir)}`;

/** Writes the root key as a new passphrase-encrypted file (keys/passphrase-keys.ts). */
export function writeRootKeyFile(path: string, pkcs8Pem: string, passphrase: string): void {
  writeNewKeyFile(path, encryptPrivateKey(createPrivateKey(pkcs8Pem), passphrase));
}

/** Opens a root key file as an exportable software signer, with the warning when the file is below the policy. */
export async function openRootKeyFile(
  path: string,
  passphrase: string | undefined,
): Promise<{ signer: SoftwareCaSigner; warning: string | null }> {
  const opened = openKeyFile(path, requirePassphrase(passphrase, ROOT_PASSPHRASE_SOURCE), rootRekeyCommand(dirname(path)));
  const der = opened.privateKey.export({ format: 'der', type: 'pkcs8' });
  const signer = await importSoftwareSigner(`-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`, true);
  return { signer, warning: opened.warning };
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
  /** Set when the key file is protected below the policy (with the command that re-encrypts it). */
  warning: string | null;
}

/** Creates the root CA in an empty offline directory (ECDSA P-256, pathLen 1, 20 years). */
export async function initOfflineRoot(
  dir: string,
  name: string,
  options: RootKeyOptions,
  now = new Date(),
): Promise<{ cert: x509.X509Certificate; keyLocation: 'file' | 'pkcs11'; paths: ReturnType<typeof offlineRootPaths> }> {
  const paths = offlineRootPaths(dir);
  if (existsSync(paths.cert) || existsSync(paths.key) || existsSync(paths.tokenKey))
    throw new ConflictError(`${dir} already holds a root CA; use another directory`, { dir }, 'pki.root_exists');
  const passphrase = options.hsm ? undefined : checkPassphrase(options.passphrase, ROOT_PASSPHRASE_SOURCE);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const access = options.hsm ? new TokenAccess(() => pkcs11Options(options.hsm!, options.env)) : null;
  try {
    const signer = await generateCaSigner(access?.get() ?? null, 'bulwark-offline-root');
    const root = await createRootCa(name, now, signer);
    if (access) {
      writeFileSync(
        paths.tokenKey,
        JSON.stringify(
          { module: options.hsm!.module, tokenLabel: options.hsm!.tokenLabel, pinEnv: options.hsm!.pinEnv, label: signer.tokenLabel },
          null,
          2,
        ) + '\n',
        { mode: 0o600, flag: 'wx' },
      );
    } else {
      writeRootKeyFile(paths.key, await (signer as SoftwareCaSigner).exportPkcs8Pem(), passphrase!);
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
      return { cert, signer: await tokenSigner(access.get().signer(recorded.label)), close: () => access.close(), warning: null };
    } catch (error) {
      access.close();
      throw error;
    }
  }
  if (!existsSync(paths.key)) throw new NotFoundError(`Root CA key in ${dir} (root.key.p8 or root.key.pkcs11)`);
  const { signer, warning } = await openRootKeyFile(paths.key, options.passphrase);
  return { cert, signer, close: () => undefined, warning };
}

/** Re-encrypts the root key file of DIR at the current policy, under `next` (or the current passphrase). */
export function rekeyOfflineRoot(dir: string, current: string | undefined, next: string | undefined): RekeyResult {
  const paths = offlineRootPaths(dir);
  if (existsSync(paths.tokenKey))
    throw new ConflictError(
      `The root key of ${dir} is on a PKCS#11 token: there is no key file to re-encrypt`,
      { dir },
      'pki.root_on_token',
    );
  if (!existsSync(paths.key)) throw new NotFoundError(`Root CA key in ${dir} (root.key.p8)`);
  const secret = requirePassphrase(current, ROOT_PASSPHRASE_SOURCE);
  return rekeyFiles([paths.key], secret, next || secret, 'give --new-passphrase-file FILE or set BULWARK_ROOT_NEW_PASSPHRASE')[0]!;
}

/**
 * Signs an issuing CA from its CSR (whose signature and key are checked: ECDSA P-256 or P-384),
 * keeps a copy in `issued/`, and returns the certificate.
 */
export async function signIssuingCsr(
  root: OfflineRoot,
  dir: string,
  csrPem: string,
  days = ISSUING_VALIDITY_DAYS,
  now = new Date(),
): Promise<x509.X509Certificate> {
  if (!Number.isInteger(days) || days < 1)
    throw new ValidationError('--days must be a positive whole number', { days }, 'pki.days_invalid');
  const { csr } = await verifiedCsr(csrPem, { caKey: true }).catch((error: unknown) => {
    // Bad input on the command line: exit code 2, with the issuer's own code.
    if (error instanceof BulwarkError && error.status === 400) throw new ValidationError(error.message, error.details, error.code);
    throw error;
  });
  if (!csr.subjectName.getField('CN').length)
    throw new ValidationError('The CSR must name the issuing CA in its subject CN', {}, 'pki.csr_invalid');
  const cert = await signIssuingCa(root, csr.subjectName, csr.publicKey, now, days);
  const issued = offlineRootPaths(dir).issued;
  mkdirSync(issued, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(issued, `${cert.serialNumber}.pem`), cert.toString('pem') + '\n', 0o644);
  return cert;
}
