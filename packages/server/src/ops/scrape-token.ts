/**
 * The bearer token a Prometheus server presents to read /metrics. Only its SHA-256 hash is kept
 * (`metrics.tokenHash`, written by `bulwark admin metrics-token`): the token is 256 random bits,
 * so a fast hash is enough, and a copy of the configuration does not give it away.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_PREFIX = 'bwm_';
const HASH_PREFIX = 'sha256:';

export const SCRAPE_TOKEN_HASH_PATTERN = `^${HASH_PREFIX}[0-9a-f]{64}$`;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A new scrape token and the hash that `metrics.tokenHash` stores (the token itself is never stored). */
export function newScrapeToken(): { token: string; tokenHash: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, tokenHash: HASH_PREFIX + sha256(token).toString('hex') };
}

/** Whether the Authorization header carries the token whose hash is configured; false when none is. */
export function isScrapeAuthorized(authorization: string | undefined, tokenHash: string | undefined): boolean {
  if (!tokenHash || !authorization) return false;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match) return false;
  return timingSafeEqual(sha256(match[1]!), Buffer.from(tokenHash.slice(HASH_PREFIX.length), 'hex'));
}
