/**
 * Random identifiers and bearer secrets. Secrets are handed out once and stored only as
 * SHA-256 digests: a stolen database holds nothing that authenticates.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export const newId = (): string => randomUUID();

/** A prefixed, URL-safe secret with 256 bits of entropy, such as `bws_…` for sessions. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
