/**
 * Builds the issuing CA's certificate revocation list (RFC 5280 v2 CRL with authority key
 * identifier and CRL number), written with the `X509 CRL` PEM label OpenSSL expects.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { CaSigner } from './signer.js';

export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

const CRL_NUMBER_OID = '2.5.29.20';

export interface CrlEntry {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlParams {
  ca: x509.X509Certificate;
  /** The issuing CA's key: software, or on the token. */
  signer: CaSigner;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** DER INTEGER for a non-negative number (the CRL number). */
function derInteger(value: number): ArrayBuffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return Uint8Array.from([0x02, body.length, ...body]).buffer;
}

export async function buildCrlPem(params: CrlParams): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: params.ca.subjectName,
      thisUpdate: params.thisUpdate,
      nextUpdate: params.nextUpdate,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      signingKey: params.signer.privateKey,
      extensions: [
        await x509.AuthorityKeyIdentifierExtension.create(params.ca),
        new x509.Extension(CRL_NUMBER_OID, false, derInteger(params.number)),
      ],
      entries: params.entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, reason: x509.X509CrlReason[e.reason] })),
    },
    params.signer.crypto,
  );
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n';
}
