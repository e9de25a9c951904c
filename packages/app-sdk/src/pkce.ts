/**
 * Proof Key for Code Exchange (RFC 7636) with the S256 method, the only one Bulwark accepts: the
 * app keeps a random verifier, sends its SHA-256 as the challenge when it asks for a code, and
 * proves possession with the verifier when it redeems the code. Web Crypto only, so it runs in
 * browsers, React Native (with a `crypto.getRandomValues`/`subtle` polyfill) and Node.
 */

/** 32 random bytes give a 43-character verifier, the shortest RFC 7636 allows (§4.1). */
const VERIFIER_BYTES = 32;

export interface PkcePair {
  verifier: string;
  challenge: string;
  method: 'S256';
}

export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random URL-safe string of `bytes` random bytes (verifiers, `state`). */
export function randomToken(bytes = VERIFIER_BYTES): string {
  return base64url(webCrypto().getRandomValues(new Uint8Array(bytes)));
}

/** The S256 challenge of a verifier: BASE64URL(SHA-256(ASCII(verifier))). */
export async function challengeOf(verifier: string): Promise<string> {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) {
    throw new TypeError('A PKCE verifier is 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)');
  }
  const digest = await webCrypto().subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export async function createPkcePair(): Promise<PkcePair> {
  const verifier = randomToken();
  return { verifier, challenge: await challengeOf(verifier), method: 'S256' };
}

function webCrypto(): Crypto {
  const crypto = globalThis.crypto;
  if (!crypto?.subtle || !crypto.getRandomValues) {
    throw new Error('Web Crypto is not available: React Native apps need a crypto polyfill (getRandomValues and subtle.digest)');
  }
  return crypto;
}
