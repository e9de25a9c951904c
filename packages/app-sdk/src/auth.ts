/**
 * Sign-in for a companion app: OAuth 2.1 authorization code with PKCE (S256) against the
 * deployment's authorization server, found through its metadata (RFC 8414). The app opens
 * `beginLogin().url` in the system browser (or an in-app browser tab), keeps the returned
 * `pending` until the redirect comes back, and hands both to `completeLogin`. After that,
 * `accessToken()` always returns a live token: it refreshes shortly before expiry, one refresh
 * at a time, and keeps the rotated refresh token the server hands back. A refresh the server
 * refuses (revoked, expired, reused elsewhere) ends the sign-in: the stored tokens are dropped and
 * `SignInRequiredError` tells the app to send its user through login again.
 */
import { AuthorizationError, SignInRequiredError } from './errors.js';
import { createPkcePair, randomToken } from './pkce.js';

/** Where the app keeps its tokens: the platform's secure storage (Keychain, Keystore), never plain local storage on a phone. */
export interface TokenStorage {
  load(): Promise<StoredTokens | null>;
  save(tokens: StoredTokens | null): Promise<void>;
}

export interface StoredTokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, ms since the epoch. */
  expiresAt: number;
  scope: string;
}

/** What the app keeps between `beginLogin` and `completeLogin` (across the browser round trip). */
export interface PendingLogin {
  state: string;
  verifier: string;
  redirectUri: string;
}

export interface AppAuthOptions {
  /** The deployment's public URL, e.g. `https://iot.example.com`. */
  baseUrl: string;
  /** The app's client ID, registered by the brand's operators. */
  clientId: string;
  /** Exactly as registered (the server compares it character for character). */
  redirectUri: string;
  /** The scopes the app asks for (`devices:read`, `devices:control`, `devices:share`, `account`). */
  scopes: string[];
  storage: TokenStorage;
  fetch?: typeof fetch;
  /** Refresh this many seconds before the access token expires (default 30). */
  refreshMarginSeconds?: number;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

interface ServerMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string;
}

interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  scope?: string;
}

export class AppAuth {
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private metadataAnswer: Promise<ServerMetadata> | null = null;
  private refreshing: Promise<StoredTokens> | null = null;

  constructor(private readonly options: AppAuthOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.now = options.now ?? Date.now;
  }

  /** The authorization URL to open, and what to keep until the redirect returns. */
  async beginLogin(): Promise<{ url: string; pending: PendingLogin }> {
    const metadata = await this.metadata();
    const pkce = await createPkcePair();
    const state = randomToken(16);
    const url = new URL(metadata.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.options.clientId,
      redirect_uri: this.options.redirectUri,
      scope: this.options.scopes.join(' '),
      state,
      code_challenge: pkce.challenge,
      code_challenge_method: pkce.method,
    }).toString();
    return { url: url.toString(), pending: { state, verifier: pkce.verifier, redirectUri: this.options.redirectUri } };
  }

  /** Redeems the code of the redirect `redirectedTo` (the full URL the browser came back with). */
  async completeLogin(redirectedTo: string, pending: PendingLogin): Promise<StoredTokens> {
    const params = new URL(redirectedTo).searchParams;
    // The state check comes first: a redirect that is not the answer to this login is not read further.
    if (params.get('state') !== pending.state) {
      throw new AuthorizationError('state_mismatch', 'The redirect does not answer this login (state differs): start the login again');
    }
    const error = params.get('error');
    if (error) throw new AuthorizationError(error, params.get('error_description') ?? `The authorization server refused: ${error}`);
    const code = params.get('code');
    if (!code) throw new AuthorizationError('invalid_response', 'The redirect carries neither a code nor an error');
    const tokens = await this.tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: pending.redirectUri,
      client_id: this.options.clientId,
      code_verifier: pending.verifier,
    });
    await this.options.storage.save(tokens);
    return tokens;
  }

  /** A live access token, refreshed first if it is about to expire. */
  async accessToken(): Promise<string> {
    const tokens = await this.options.storage.load();
    if (!tokens) throw new SignInRequiredError('Not signed in');
    const margin = (this.options.refreshMarginSeconds ?? 30) * 1000;
    if (tokens.expiresAt - margin > this.now()) return tokens.accessToken;
    return (await this.refresh(tokens)).accessToken;
  }

  /** Refreshes now (after the API answered 401 to a token that looked live), one refresh at a time. */
  async refreshNow(): Promise<string> {
    const tokens = await this.options.storage.load();
    if (!tokens) throw new SignInRequiredError('Not signed in');
    return (await this.refresh(tokens)).accessToken;
  }

  /** Revokes the refresh token (and with it the sign-in's access tokens) and forgets both. */
  async logout(): Promise<void> {
    const tokens = await this.options.storage.load();
    await this.options.storage.save(null);
    if (!tokens) return;
    const metadata = await this.metadata();
    if (!metadata.revocation_endpoint) return;
    await this.post(metadata.revocation_endpoint, {
      token: tokens.refreshToken,
      token_type_hint: 'refresh_token',
      client_id: this.options.clientId,
    });
  }

  private refresh(tokens: StoredTokens): Promise<StoredTokens> {
    // One refresh in flight: a second one with the same (already rotated) refresh token would be
    // reuse, and the server revokes the whole sign-in on reuse.
    this.refreshing ??= this.tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken,
      client_id: this.options.clientId,
    })
      .then(async (fresh) => {
        await this.options.storage.save(fresh);
        return fresh;
      })
      .catch(async (error: unknown) => {
        if (error instanceof SignInRequiredError) await this.options.storage.save(null);
        throw error;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async tokenRequest(form: Record<string, string>): Promise<StoredTokens> {
    const metadata = await this.metadata();
    const answer = await this.post(metadata.token_endpoint, form);
    const body = (await answer.json().catch(() => ({}))) as Partial<TokenAnswer> & { error?: string; error_description?: string };
    if (!answer.ok) {
      const message = body.error_description ?? `The token endpoint answered ${answer.status}`;
      if (body.error === 'invalid_grant' || answer.status === 401) throw new SignInRequiredError(message, body.error);
      throw new AuthorizationError(body.error ?? 'server_error', message);
    }
    if (!body.access_token || !body.refresh_token || typeof body.expires_in !== 'number' || body.token_type?.toLowerCase() !== 'bearer') {
      throw new AuthorizationError(
        'invalid_response',
        'The token endpoint answered without a bearer access token, refresh token and lifetime',
      );
    }
    return {
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      expiresAt: this.now() + body.expires_in * 1000,
      scope: body.scope ?? this.options.scopes.join(' '),
    };
  }

  private post(url: string, form: Record<string, string>): Promise<Response> {
    return this.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
    });
  }

  private metadata(): Promise<ServerMetadata> {
    this.metadataAnswer ??= (async () => {
      const url = new URL('/.well-known/oauth-authorization-server', this.options.baseUrl).toString();
      const answer = await this.fetch(url, { headers: { accept: 'application/json' } });
      if (!answer.ok)
        throw new AuthorizationError('discovery_failed', `No authorization server metadata at ${url} (HTTP ${answer.status})`);
      const metadata = (await answer.json()) as ServerMetadata;
      // RFC 8414 §3.3: the metadata must name the issuer the app was configured with, or it is someone else's.
      if (metadata.issuer?.replace(/\/+$/, '') !== this.options.baseUrl.replace(/\/+$/, '')) {
        throw new AuthorizationError(
          'discovery_failed',
          `The metadata at ${url} names issuer ${metadata.issuer}, not ${this.options.baseUrl}`,
        );
      }
      if (!metadata.authorization_endpoint || !metadata.token_endpoint) {
        throw new AuthorizationError('discovery_failed', `The metadata at ${url} names no authorization or token endpoint`);
      }
      return metadata;
    })().catch((error: unknown) => {
      this.metadataAnswer = null;
      throw error;
    });
    return this.metadataAnswer;
  }
}

/** Tokens kept in memory only: for tests and for apps that sign in on every start. */
export class MemoryTokenStorage implements TokenStorage {
  private tokens: StoredTokens | null = null;
  load(): Promise<StoredTokens | null> {
    return Promise.resolve(this.tokens);
  }
  save(tokens: StoredTokens | null): Promise<void> {
    this.tokens = tokens;
    return Promise.resolve();
  }
}
