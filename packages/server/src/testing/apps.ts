/**
 * Companion-app helpers for the OAuth tests: a PKCE pair, an app client registered through the
 * API, the authorization request a consumer's session makes, the token endpoint spoken in
 * application/x-www-form-urlencoded as RFC 6749 asks, and the query of a redirect.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { HttpClient, HttpResponse } from './http.js';

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface RegisteredClient {
  clientId: string;
  redirectUri: string;
}

export async function registerClient(
  client: HttpClient,
  ownerToken: string,
  input: { name: string; redirectUris: string[]; scopes: string[]; firstParty: boolean },
): Promise<RegisteredClient> {
  const res = await client.post('/api/v1/apps/clients', input, { token: ownerToken });
  if (res.status !== 201) throw new Error(`could not register ${input.name}: ${res.text}`);
  return { clientId: res.body.clientId, redirectUri: input.redirectUris[0]! };
}

export function authorizePath(params: Record<string, string | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, value);
  return `/oauth/authorize?${query.toString()}`;
}

/** The query parameters of a redirect's Location. */
export function redirected(res: HttpResponse): URLSearchParams {
  const location = res.headers.location;
  if (typeof location !== 'string') throw new Error(`expected a redirect, got ${res.status}: ${res.text}`);
  return new URL(location).searchParams;
}

export function postForm(client: HttpClient, path: string, params: Record<string, string | undefined>): Promise<HttpResponse> {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) form.set(name, value);
  return client.request('POST', path, { raw: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

/** A consumer's session authorizes a (first-party or already consented) client; returns the code. */
export async function authorizationCode(
  client: HttpClient,
  sessionToken: string,
  app: RegisteredClient,
  scope: string,
  challenge: string,
  state = 'state-123',
): Promise<string> {
  const res = await client.get(
    authorizePath({
      response_type: 'code',
      client_id: app.clientId,
      redirect_uri: app.redirectUri,
      scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }),
    { token: sessionToken },
  );
  const query = redirected(res);
  const code = query.get('code');
  if (!code || query.get('state') !== state) throw new Error(`no code on the redirect: ${res.headers.location}`);
  return code;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope: string;
}

/** The full PKCE sign-in of an app: authorize with the session, exchange the code. */
export async function appSignIn(client: HttpClient, sessionToken: string, app: RegisteredClient, scope: string): Promise<Tokens> {
  const { verifier, challenge } = pkce();
  const code = await authorizationCode(client, sessionToken, app, scope, challenge);
  const res = await postForm(client, '/oauth/token', {
    grant_type: 'authorization_code',
    client_id: app.clientId,
    code,
    redirect_uri: app.redirectUri,
    code_verifier: verifier,
  });
  if (res.status !== 200) throw new Error(`code exchange failed: ${res.text}`);
  return res.body as Tokens;
}
