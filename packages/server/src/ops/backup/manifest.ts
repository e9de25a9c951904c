/**
 * What a backup holds and who made it: the manifest lists every entry with its size and SHA-256,
 * the database engine and the digest of every table, and is signed by the deployment's server
 * issuing CA key (in software or on its PKCS#11 token). Restore checks the signature against the
 * issuing CA certificate, that certificate against the deployment's root CA, and the root against
 * the deployment the operator expects, all before anything is written where the data goes.
 */
import { createHash, verify, X509Certificate } from 'node:crypto';
import { IntegrityError, ValidationError } from '../../errors.js';
import type { CaSigner } from '../../pki/signer.js';
import type { Engine } from '../../storage/database.js';
import type { TableDigests } from '../../storage/snapshot.js';

export const MANIFEST_ENTRY = 'manifest.json';
export const SIGNATURE_ENTRY = 'manifest.sig';

export interface ManifestEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: 'bulwark-backup-manifest/1';
  created: string;
  /** SHA-256 of the root CA certificate (DER, hex). */
  deployment: string;
  engine: Engine;
  /** The entry holding the database: `database/bulwark.db` (SQLite) or `database/dump.pgc` (pg_dump custom format). */
  database: string;
  /** The newest migration the database had: a restore into an older build is refused by its migrator. */
  migration: string | null;
  entries: ManifestEntry[];
  tables: TableDigests;
}

export interface ManifestSignature {
  signer: 'server-ca';
  algorithm: 'ECDSA-P256-SHA256';
  /** The server issuing CA certificate (PEM) whose key signed. */
  certificate: string;
  /** IEEE P1363 (r‖s), base64. */
  signature: string;
}

/** SHA-256 of a certificate's DER, hex: the deployment's fingerprint when it is the root CA. */
export function certificateFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

export async function signManifest(bytes: Buffer, signer: CaSigner, certificatePem: string): Promise<ManifestSignature> {
  const algorithm = signer.privateKey.algorithm as EcKeyAlgorithm;
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new ValidationError(`The server issuing CA key is ${algorithm.name}; backups are signed with ECDSA P-256`, {}, 'backup.invalid');
  }
  const signature = await signer.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, signer.privateKey, new Uint8Array(bytes));
  return {
    signer: 'server-ca',
    algorithm: 'ECDSA-P256-SHA256',
    certificate: certificatePem,
    signature: Buffer.from(signature).toString('base64'),
  };
}

/**
 * Checks the manifest's signature, its signer's certificate against `rootPem`, and returns the
 * parsed manifest; throws backup.signature_invalid otherwise.
 */
export function verifyManifest(bytes: Buffer, signatureJson: Buffer, rootPem: string): Manifest {
  let signature: ManifestSignature;
  try {
    signature = JSON.parse(signatureJson.toString('utf8')) as ManifestSignature;
  } catch {
    throw invalidSignature('manifest.sig is not JSON');
  }
  if (signature.algorithm !== 'ECDSA-P256-SHA256' || typeof signature.certificate !== 'string' || typeof signature.signature !== 'string') {
    throw invalidSignature('manifest.sig names no supported algorithm, certificate and signature');
  }
  let signerCert: X509Certificate;
  let root: X509Certificate;
  try {
    signerCert = new X509Certificate(signature.certificate);
    root = new X509Certificate(rootPem);
  } catch {
    throw invalidSignature('the signer or root certificate does not parse');
  }
  if (!signerCert.ca || !signerCert.checkIssued(root) || !signerCert.verify(root.publicKey)) {
    throw invalidSignature('the signer certificate is not an issuing CA of this deployment’s root');
  }
  const ok = verify('sha256', bytes, { key: signerCert.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature.signature, 'base64'));
  if (!ok) throw invalidSignature('the manifest signature does not verify');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
  } catch {
    throw new ValidationError('manifest.json is not JSON', {}, 'backup.invalid');
  }
  if (manifest.format !== 'bulwark-backup-manifest/1' || !Array.isArray(manifest.entries) || typeof manifest.tables !== 'object') {
    throw new ValidationError('manifest.json is not a Bulwark backup manifest', {}, 'backup.invalid');
  }
  return manifest;
}

function invalidSignature(why: string): ValidationError {
  return new IntegrityError(`The backup's signature does not hold: ${why}`, 'backup.signature_invalid');
}
