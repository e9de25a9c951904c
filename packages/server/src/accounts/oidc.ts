/**
 * The relying party's side of OpenID Connect, through `openid-client`: discovery of the provider,
 * the authorization URL with PKCE (S256), state and nonce, and the code exchange with the ID token's
 * validation (issuer, audience, nonce, exp/iat, and the signature with the provider's JWKS, which
 * openid-client skips by default for a token from the token endpoint: turned on here). Nothing here
 * parses or verifies a token by hand. Discovery runs for every sign-in, so a provider's key rotation
 * is seen at once (openid-client's JWKS cache lives with the discovered configuration).
 */
import * as oidc from 'openid-client';
import type { Clock } from '../clock.js';
import { SsoIdTokenInvalidError, SsoProviderRefusedError, SsoProviderUnreachableError } from './sso-errors.js';

export interface RelyingPartySettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
}

export interface AuthorizationRequest {
  url: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The claims of a validated ID token that the sign-in uses. */
export type IdTokenClaims = Record<string, unknown> & { iss: string; sub: string; aud: string | string[]; exp: number; iat: number };

/** How long a start reuses the provider's discovery document: anonymous starts do not each fetch it. */
const START_DISCOVERY_TTL_MS = 5 * 60_000;

export class RelyingParty {
  private readonly startCache = new Map<string, { config: oidc.Configuration; at: number }>();

  /**
   * @param allowInsecureLoopback tests only: accept an `http://127.0.0.1` provider (never from the
   *   config file; an organization's issuer is otherwise refused unless it is https).
   */
  constructor(
    private readonly clock: Clock,
    private readonly allowInsecureLoopback = false,
  ) {}

  async authorizationRequest(settings: RelyingPartySettings, redirectUri: string, scopes: string): Promise<AuthorizationRequest> {
    const config = await this.discoverForStart(settings);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: scopes,
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, codeVerifier };
  }

  /** Exchanges the code and validates the ID token; throws a refusal with its reason. */
  async exchange(
    settings: RelyingPartySettings,
    callbackUrl: URL,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<IdTokenClaims> {
    const config = await this.discover(settings);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      if (error instanceof oidc.AuthorizationResponseError) throw new SsoProviderRefusedError(error.error);
      if (error instanceof oidc.ResponseBodyError) throw new SsoProviderRefusedError(error.error);
      const code = (error as { code?: string }).code;
      if (error instanceof TypeError && code === undefined) throw new SsoProviderUnreachableError(settings.issuer);
      // The cause says which check failed when the code is a general one (e.g. the signature under OAUTH_INVALID_RESPONSE).
      const cause = (error as Error).cause;
      const because = cause instanceof Error ? `: ${cause.message}` : '';
      throw new SsoIdTokenInvalidError(code ?? 'invalid', `${(error as Error).message}${because}`);
    }
    const claims = tokens.claims();
    if (!claims) throw new SsoIdTokenInvalidError('missing', 'The provider returned no ID token');
    return claims as IdTokenClaims;
  }

  /** Discovery for building the authorization URL, cached briefly (the callback always discovers afresh). */
  private async discoverForStart(settings: RelyingPartySettings): Promise<oidc.Configuration> {
    const key = `${settings.issuer}\n${settings.clientId}\n${settings.clientSecret}`;
    const cached = this.startCache.get(key);
    if (cached && Date.now() - cached.at < START_DISCOVERY_TTL_MS) return cached.config;
    const config = await this.discover(settings);
    if (this.startCache.size >= 1000) this.startCache.clear();
    this.startCache.set(key, { config, at: Date.now() });
    return config;
  }

  private async discover(settings: RelyingPartySettings): Promise<oidc.Configuration> {
    const issuer = new URL(settings.issuer);
    const insecure = this.allowInsecureLoopback && issuer.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(issuer.hostname);
    let config: oidc.Configuration;
    try {
      config = await oidc.discovery(
        issuer,
        settings.clientId,
        {
          // ID tokens are checked against the platform's clock (tests move it).
          [oidc.clockSkew]: Math.round((this.clock.now() - Date.now()) / 1000),
        },
        oidc.ClientSecretBasic(settings.clientSecret),
        { ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}), timeout: 10 },
      );
    } catch (error) {
      throw new SsoProviderUnreachableError(settings.issuer, (error as Error).message);
    }
    // openid-client trusts an ID token from the token endpoint on the strength of TLS alone unless
    // told otherwise (OIDC Core 3.1.3.7 allows it); Bulwark checks the signature with the provider's
    // JWKS every time, so a token altered or signed with a retired key is refused whatever the channel.
    oidc.enableNonRepudiationChecks(config);
    return config;
  }
}
