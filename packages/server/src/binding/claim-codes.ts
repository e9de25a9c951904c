/**
 * Claim codes: 16 characters of Crockford base32 (80 bits from the CSPRNG), shown in groups of
 * four (`7QK2-M9XD-…`), typed or scanned from the QR code on the box. What the consumer types is
 * normalised (case, dashes, spaces, the look-alikes I L O) before it is hashed; only the SHA-256
 * of the normalised code is stored, as for every other bearer secret.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../tokens.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CODE_LENGTH = 16;

export function newClaimCode(): string {
  const bytes = randomBytes(CODE_LENGTH);
  let code = '';
  // 256 is a multiple of 32: every character is uniform.
  for (const byte of bytes) code += ALPHABET[byte % 32];
  return code.match(/.{4}/g)!.join('-');
}

/** The code's canonical form, or null when it cannot be a claim code. */
export function normalizeClaimCode(input: string): string | null {
  const text = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (text.length !== CODE_LENGTH) return null;
  for (const c of text) if (!ALPHABET.includes(c)) return null;
  return text;
}

export const claimCodeHash = (normalized: string): string => sha256Hex(`bulwark-claim:${normalized}`);
