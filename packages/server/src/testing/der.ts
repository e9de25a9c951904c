/**
 * For tests that make many certificates or CSRs: the few DER elements they need, put together by
 * hand and signed with node:crypto. @peculiar/x509's generators serialise through a general ASN.1
 * library at several times the CPU (about 3 ms a certificate or CSR), which a test making a
 * thousand devices pays in seconds. What is made here is checked where it always was: by the
 * platform's own parsing (pki/issuer.ts), by node:crypto and by the TLS stacks that meet it.
 */
import { sign, type KeyObject } from 'node:crypto';

/** A DER element: `tag`, its length, then `parts`. (What tests make stays far below 64 KiB.) */
export function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

export const SEQUENCE = 0x30;
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), without parameters. */
export const ECDSA_WITH_SHA256 = der(SEQUENCE, oid('2a8648ce3d040302'));
/** The attribute types tests name subjects with: commonName and organizationName. */
const ATTRIBUTE = { CN: '550403', O: '55040a' } as const;

/** A Name of one attribute per RDN, in order; a PrintableString where the value allows, as @peculiar/x509 chose, else a UTF8String. */
export function distinguishedName(attributes: [keyof typeof ATTRIBUTE, string][]): Buffer {
  return der(
    SEQUENCE,
    ...attributes.map(([type, value]) =>
      der(0x31, der(SEQUENCE, oid(ATTRIBUTE[type]), der(/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value) ? 0x13 : 0x0c, Buffer.from(value)))),
    ),
  );
}

/** UTCTime of `ms` (years 1950-2049). */
export const utcTime = (ms: number) => der(0x17, Buffer.from(`${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));

/** `content` (a TBSCertificate or CertificationRequestInfo) with its ECDSA P-256 / SHA-256 signature by `key`, as DER. */
export const signedEcdsa = (content: Buffer, key: KeyObject) =>
  der(SEQUENCE, content, ECDSA_WITH_SHA256, der(0x03, Buffer.from([0]), sign('sha256', content, key)));

/** DER as PEM under `label`. */
export const pemOf = (label: string, body: Buffer) =>
  `-----BEGIN ${label}-----\n${body.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
