/**
 * Shared access signatures for symmetric-key devices, in Azure IoT's format, and the DPS-style
 * key derivation. Pure functions: the service, the CLI, the device SDK and the tests share them.
 *
 *   SharedAccessSignature sr=<url-encoded resource>&se=<expiry, epoch seconds>&sig=<url-encoded base64 MAC>
 *   MAC = HMAC-SHA256(key, encodeURIComponent(resource) + "\n" + se)
 *
 * The bytes signed are always the canonical encoding (encodeURIComponent) of the decoded `sr`,
 * whatever percent-encoding the device used, so two spellings of one resource sign the same.
 * A device key derived from an enrollment group is HMAC-SHA256(groupKey, registrationId), the
 * raw 32 bytes, exactly as Azure DPS derives it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SAS_PREFIX = 'SharedAccessSignature ';
/** Bytes of a device or group key (AES-256-sized). */
export const KEY_BYTES = 32;

export const deviceResource = (deviceId: string): string => `devices/${deviceId}`;
export const registrationResource = (groupId: string, registrationId: string): string => `registrations/${groupId}/${registrationId}`;

export interface SasToken {
  /** The resource, decoded. */
  resource: string;
  /** Expiry, seconds since the epoch. */
  expiresAt: number;
  /** The MAC, decoded from base64. */
  signature: Buffer;
}

/** The token is not a shared access signature in the expected form. */
export class SasFormatError extends Error {}

/** A key given as base64 text (how it is handed out) or raw bytes. */
export function keyBytes(key: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key.trim(), 'base64');
  if (bytes.length !== KEY_BYTES)
    throw new SasFormatError(`A key is ${KEY_BYTES} bytes (base64, 44 characters); got ${bytes.length} bytes`);
  return bytes;
}

/** The exact bytes a token's MAC covers. */
export function stringToSign(resource: string, expiresAt: number): string {
  return `${encodeURIComponent(resource)}\n${expiresAt}`;
}

export function sign(key: Buffer | string, resource: string, expiresAt: number): Buffer {
  return createHmac('sha256', keyBytes(key)).update(stringToSign(resource, expiresAt)).digest();
}

/** A token for `resource` valid until `expiresAt` (seconds since the epoch). */
export function createToken(key: Buffer | string, resource: string, expiresAt: number): string {
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0)
    throw new SasFormatError('expiresAt must be a positive whole number of seconds since the epoch');
  const sig = sign(key, resource, expiresAt).toString('base64');
  return `${SAS_PREFIX}sr=${encodeURIComponent(resource)}&se=${expiresAt}&sig=${encodeURIComponent(sig)}`;
}

const EXPIRY = /^[1-9][0-9]{0,11}$/;
const BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const MAX_TOKEN = 1024;

/** Parses a token strictly: exactly sr, se and sig, each once; throws SasFormatError otherwise. */
export function parseToken(token: string): SasToken {
  if (typeof token !== 'string' || token.length > MAX_TOKEN || !token.startsWith(SAS_PREFIX))
    throw new SasFormatError(`A token starts with "${SAS_PREFIX}"`);
  const fields = new Map<string, string>();
  for (const part of token.slice(SAS_PREFIX.length).split('&')) {
    const eq = part.indexOf('=');
    const name = eq > 0 ? part.slice(0, eq) : '';
    if (!['sr', 'se', 'sig'].includes(name) || fields.has(name)) throw new SasFormatError('A token has exactly the fields sr, se and sig');
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw new SasFormatError(`The token's ${name} is not valid percent-encoding`);
    }
    fields.set(name, value);
  }
  const [resource, se, sig] = [fields.get('sr'), fields.get('se'), fields.get('sig')];
  if (!resource || !se || !sig) throw new SasFormatError('A token has exactly the fields sr, se and sig');
  if (!EXPIRY.test(se)) throw new SasFormatError('se is the expiry in whole seconds since the epoch');
  if (!BASE64.test(sig)) throw new SasFormatError('sig is the base64 HMAC-SHA256 (32 bytes)');
  return { resource, expiresAt: Number(se), signature: Buffer.from(sig, 'base64') };
}

/** Whether the token's MAC was made with `key`; constant time. */
export function signatureMatches(token: SasToken, key: Buffer | string): boolean {
  const expected = sign(key, token.resource, token.expiresAt);
  return token.signature.length === expected.length && timingSafeEqual(token.signature, expected);
}

/** The key of the device registering as `registrationId` through a group: HMAC-SHA256(groupKey, registrationId). */
export function deriveDeviceKey(groupKey: Buffer | string, registrationId: string): Buffer {
  return createHmac('sha256', keyBytes(groupKey)).update(registrationId, 'utf8').digest();
}
