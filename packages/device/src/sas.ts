/**
 * Shared access signatures for symmetric-key devices (docs/security-model.md, "Symmetric-key
 * devices"), in Azure IoT's format:
 *
 *   SharedAccessSignature sr=<url-encoded resource>&se=<expiry, epoch seconds>&sig=<url-encoded base64 MAC>
 *   MAC = HMAC-SHA256(key, encodeURIComponent(resource) + "\n" + se), resource = devices/<device ID>
 *
 * The device's own copy (the SDK does not depend on the server package); a test checks it
 * against the platform's.
 */
import { createHmac } from 'node:crypto';
import { DeviceError } from './errors.js';

const KEY_BYTES = 32;

/** A device key given as base64 text (how the platform hands it out) or raw bytes. */
export function symmetricKeyBytes(key: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key.trim(), 'base64');
  if (bytes.length !== KEY_BYTES)
    throw new DeviceError(`A device key is ${KEY_BYTES} bytes (base64, 44 characters); got ${bytes.length} bytes`, 'sas.bad_key');
  return bytes;
}

/** The token proving `deviceId` until `expiresAt` (seconds since the epoch). */
export function deviceSasToken(key: Buffer | string, deviceId: string, expiresAt: number): string {
  const resource = encodeURIComponent(`devices/${deviceId}`);
  const sig = createHmac('sha256', symmetricKeyBytes(key)).update(`${resource}\n${expiresAt}`).digest('base64');
  return `SharedAccessSignature sr=${resource}&se=${expiresAt}&sig=${encodeURIComponent(sig)}`;
}
