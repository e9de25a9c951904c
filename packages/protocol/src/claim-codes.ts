/**
 * Claim codes and the box label's link (docs/binding.md#the-label), shared by the server that
 * issues them and the companion app that reads them. A code is 16 characters of Crockford base32
 * shown in groups of four (`7QK2-M9XD-4F0A-C1RZ`); what a consumer types or scans is normalised
 * (case, dashes, spaces, the look-alikes I L O) before anything else. The label's QR code holds a
 * link into the companion app with the code in the fragment, which browsers send to no server and
 * keep out of every access log: `https://<platform>/app/add?product=<product ID>#code=<code>`.
 */

export const CLAIM_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CLAIM_CODE_LENGTH = 16;
/** The companion app's Add a device page, below the platform's origin. */
export const CLAIM_LABEL_PATH = '/app/add';

/** The code's canonical form (upper case, no dashes or spaces, I/L read as 1, O as 0), or null when it cannot be a claim code. */
export function normalizeClaimCode(input: string): string | null {
  const text = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (text.length !== CLAIM_CODE_LENGTH) return null;
  for (const c of text) if (!CLAIM_CODE_ALPHABET.includes(c)) return null;
  return text;
}

/** A normalised code as it is printed and shown: groups of four joined by dashes. */
export function formatClaimCode(normalized: string): string {
  return normalized.match(/.{4}/g)!.join('-');
}

/** The link a box label's QR code holds: the Add a device page of the platform at `base`, the code in the fragment. */
export function claimLabelLink(base: string, productId: string, code: string): string {
  return `${base.replace(/\/+$/, '')}${CLAIM_LABEL_PATH}?product=${encodeURIComponent(productId)}#code=${code}`;
}

/** What a scanned QR code or a typed value holds, read by `readClaimLabel`. */
export type ClaimLabel =
  | { kind: 'code'; code: string; productId: string | null }
  /** A link, but to another site (or another scheme, such as `javascript:`): never opened. */
  | { kind: 'other_origin'; origin: string }
  /** Neither a claim code nor a label link of this platform. */
  | { kind: 'not_a_code' };

/**
 * Reads a bare claim code, or a label link of the platform at `origin` (its Add a device page with
 * `#code=`). A link to any other origin or scheme is refused, whatever it holds, so a planted QR
 * code cannot send the app elsewhere; nothing read here is ever navigated to.
 */
export function readClaimLabel(text: string, origin: string): ClaimLabel {
  const value = text.trim();
  const bare = normalizeClaimCode(value);
  if (bare) return { kind: 'code', code: formatClaimCode(bare), productId: null };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { kind: 'not_a_code' };
  }
  if (url.origin !== origin) return { kind: 'other_origin', origin: url.origin === 'null' ? `${url.protocol}…` : url.origin };
  if (url.pathname !== CLAIM_LABEL_PATH) return { kind: 'not_a_code' };
  const code = normalizeClaimCode(new URLSearchParams(url.hash.slice(1)).get('code') ?? '');
  if (!code) return { kind: 'not_a_code' };
  return { kind: 'code', code: formatClaimCode(code), productId: url.searchParams.get('product') || null };
}
