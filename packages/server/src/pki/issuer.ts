/**
 * Issues device certificates from CSRs under an issuing CA: checks the CSR's signature, its key
 * (ECDSA P-256/P-384, Ed25519, RSA of at least 2048 bits) and that it names no identity other
 * than the device's, then applies the device certificate profile (docs/security-model.md).
 * Pure: no storage, no HTTP, so the service and the benchmark's worker threads share it.
 */
import 'reflect-metadata';
import { createHash, createPublicKey, verify, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { serialNumber } from './ca.js';
import { sequenceElements } from './der.js';
import { CsrInvalidError, DeviceIdInvalidError, IdentityMismatchError, WeakKeyError } from './errors.js';
import { EC_P256, type CaSigner } from './signer.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const DAY_MS = 86_400_000;
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CN_OID = '2.5.4.3';
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1']);
const MIN_RSA_BITS = 2048;

export const DEFAULT_DEVICE_VALIDITY_DAYS = 365;

/** The URI SAN every device certificate carries. */
export function deviceUri(deviceId: string): string {
  return `urn:bulwark:device:${deviceId}`;
}

export interface IssuerOptions {
  /** Where relying parties fetch the CRL (the CRL distribution point). */
  crlUrl: string;
  validityDays?: number;
}

export interface DeviceCertificate {
  serial: string;
  deviceId: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  fingerprintSha256: string;
  pem: string;
}

export class CertificateIssuer {
  private constructor(
    private readonly ca: x509.X509Certificate,
    private readonly signer: CaSigner,
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
    private readonly crlDistribution: x509.CRLDistributionPointsExtension,
    private readonly validityDays: number,
  ) {}

  /** An issuer for the CA whose certificate (PEM) and key (software or on the token) are given. */
  static async create(caCertPem: string, signer: CaSigner, options: IssuerOptions): Promise<CertificateIssuer> {
    const ca = new x509.X509Certificate(caCertPem);
    return new CertificateIssuer(
      ca,
      signer,
      await x509.AuthorityKeyIdentifierExtension.create(ca),
      new x509.CRLDistributionPointsExtension([options.crlUrl]),
      options.validityDays ?? DEFAULT_DEVICE_VALIDITY_DAYS,
    );
  }

  get caCertificate(): x509.X509Certificate {
    return this.ca;
  }

  /** The CA's key, as the CRL builder signs with it. */
  get caSigner(): CaSigner {
    return this.signer;
  }

  /** Issues the device's certificate for the key in `csrPem`, or throws a PKI error saying why not. */
  async issueDeviceCertificate(deviceId: string, csrPem: string, now: Date, validityDays = this.validityDays): Promise<DeviceCertificate> {
    if (!DEVICE_ID.test(deviceId)) throw new DeviceIdInvalidError(deviceId);
    const { csr } = await verifiedCsr(csrPem);
    checkIdentity(csr, deviceId);

    const serial = serialNumber();
    const notAfter = new Date(now.getTime() + validityDays * DAY_MS);
    const subject = new x509.Name([{ [CN_OID]: [deviceId] }]);
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial,
        subject,
        issuer: this.ca.subjectName,
        notBefore: now,
        notAfter,
        signingAlgorithm: EC_P256,
        publicKey: csr.publicKey,
        signingKey: this.signer.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: deviceUri(deviceId) }]),
          this.authorityKeyId,
          new x509.SubjectKeyIdentifierExtension(keyIdentifier(csr)),
          this.crlDistribution,
        ],
      },
      this.signer.crypto,
    );
    return {
      serial,
      deviceId,
      subject: `CN=${deviceId}`,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      fingerprintSha256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
      pem: cert.toString('pem') + '\n',
    };
  }
}

/**
 * Parses a CSR and checks its key and its signature, or throws `pki.csr_invalid` / `pki.weak_key`.
 * `caKey` narrows the accepted keys to what an issuing CA may have: ECDSA P-256 or P-384.
 */
export async function verifiedCsr(
  csrPem: string,
  options: { caKey?: boolean } = {},
): Promise<{ csr: x509.Pkcs10CertificateRequest; key: KeyObject }> {
  const csr = parseCsr(csrPem);
  const key = subjectKey(csr);
  checkKey(key);
  if (options.caKey && key.asymmetricKeyType !== 'ec')
    throw new WeakKeyError(`An issuing CA key must be ECDSA P-256 or P-384, not ${key.asymmetricKeyType ?? 'unknown'}`, {
      type: key.asymmetricKeyType ?? null,
    });
  if (!(await signatureVerifies(csr, key))) throw new CsrInvalidError('CSR signature does not verify with the public key it carries');
  return { csr, key };
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (error) {
    throw new CsrInvalidError(`CSR is not a PEM or DER PKCS#10 request: ${(error as Error).message}`);
  }
}

function subjectKey(csr: x509.Pkcs10CertificateRequest): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw new WeakKeyError(`CSR public key is of an unsupported type: ${(error as Error).message}`);
  }
}

/**
 * node:crypto checks the signature over the CSR's DER certificationRequestInfo with the key already
 * opened for the key check (the library's verify imports the key again through WebCrypto, which
 * costs more than the rest of issuance). RSA-PSS, with its parameters, is left to the library.
 */
async function signatureVerifies(csr: x509.Pkcs10CertificateRequest, key: KeyObject): Promise<boolean> {
  const algorithm = csr.signatureAlgorithm as x509.HashedAlgorithm;
  if (algorithm.name === 'RSA-PSS') return csr.verify().catch(() => false);
  try {
    const [info] = sequenceElements(Buffer.from(csr.rawData));
    const hash =
      algorithm.name === 'Ed25519' || key.asymmetricKeyType === 'ed25519' ? null : algorithm.hash.name.replace('-', '').toLowerCase();
    return verify(hash, info!.bytes, key, Buffer.from(csr.signature));
  } catch {
    return false;
  }
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function keyIdentifier(csr: x509.Pkcs10CertificateRequest): string {
  const bits = sequenceElements(Buffer.from(csr.publicKey.rawData))[1]!.contents.subarray(1);
  return createHash('sha1').update(bits).digest('hex');
}

function checkKey(key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ed25519') return;
  if (type === 'ec') {
    if (details.namedCurve && ACCEPTED_CURVES.has(details.namedCurve)) return;
    throw new WeakKeyError(`Curve ${details.namedCurve ?? 'unknown'} is not accepted: use P-256, P-384 or Ed25519`, {
      curve: details.namedCurve ?? null,
    });
  }
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) >= MIN_RSA_BITS) return;
    throw new WeakKeyError(`RSA key of ${details.modulusLength ?? 0} bits is too weak: at least ${MIN_RSA_BITS} bits are required`, {
      bits: details.modulusLength ?? 0,
    });
  }
  throw new WeakKeyError(
    `Key type ${type ?? 'unknown'} is not accepted: use ECDSA P-256/P-384, Ed25519 or RSA of at least ${MIN_RSA_BITS} bits`,
    { type: type ?? null },
  );
}

/** The CSR may name the device (CN, URI or DNS SAN) or nothing; naming anything else is refused. */
function checkIdentity(csr: x509.Pkcs10CertificateRequest, deviceId: string): void {
  for (const name of csr.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(name)) {
      for (const value of values) {
        if (type === 'CN' && value !== deviceId)
          throw new IdentityMismatchError(`CSR subject names "${value}", not device ${deviceId}`, { deviceId, named: value });
      }
    }
  }
  const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  for (const entry of san?.names.items ?? []) {
    const fits =
      (entry.type === 'url' && entry.value === deviceUri(deviceId)) ||
      (entry.type === 'dns' && entry.value.toLowerCase() === deviceId.toLowerCase());
    if (!fits)
      throw new IdentityMismatchError(`CSR subjectAltName ${entry.type}:${entry.value} does not name device ${deviceId}`, {
        deviceId,
        named: `${entry.type}:${entry.value}`,
      });
  }
}
