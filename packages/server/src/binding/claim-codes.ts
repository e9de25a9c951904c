/**
 * Claim codes on the server's side: made from the CSPRNG (80 bits), hashed for storage (only the
 * SHA-256 of the normalised code is kept, as for every other bearer secret), and their label link
 * drawn as a QR code for the box. The code's
 * alphabet, its normalisation and the label link are the protocol's (`@bulwark/protocol`
 * claim-codes.ts), shared with the companion app that reads them.
 */
import { randomBytes } from 'node:crypto';
import { CLAIM_CODE_ALPHABET, CLAIM_CODE_LENGTH, formatClaimCode } from '@bulwark/protocol';
import { renderSVG } from 'uqr';
import { sha256Hex } from '../tokens.js';

export { normalizeClaimCode } from '@bulwark/protocol';

export function newClaimCode(): string {
  const bytes = randomBytes(CLAIM_CODE_LENGTH);
  let code = '';
  // 256 is a multiple of 32: every character is uniform.
  for (const byte of bytes) code += CLAIM_CODE_ALPHABET[byte % 32];
  return formatClaimCode(code);
}

export const claimCodeHash = (normalized: string): string => sha256Hex(`bulwark-claim:${normalized}`);

/**
 * The QR code of a label link as an SVG document, for the label printer: uqr's rendering, error
 * correction M (readable with a scuffed corner), the standard four-module quiet zone.
 */
export function claimLabelSvg(link: string): string {
  return renderSVG(link, { ecc: 'M', border: 4, pixelSize: 10 });
}
