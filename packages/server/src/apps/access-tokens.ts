/**
 * Access tokens (RFC 9068 shape): short-lived JWTs signed with the organization's Ed25519 key,
 * `typ: at+jwt`, claims iss, aud, sub (the consumer), org, scope, client_id, jti, fam (the token
 * family, so revoking a grant ends its access tokens too), iat, nbf, exp, header kid.
 *
 * Verification pins everything an attacker could choose: the algorithm (EdDSA only, so `none` and
 * HS256 keyed with the public key are refused before any key is touched), the kid (one that still
 * verifies: retired keys are refused), issuer, audience, expiry and not-before with a small clock
 * tolerance, and the token's organization against the key's.
 */
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Clock } from '../clock.js';
import { AccessTokenInvalidError } from './errors.js';
import { isAppScope, type AppScope } from './model.js';
import { TOKEN_ALGORITHM, type AppSigningKeys } from './signing-keys.js';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** Clock skew tolerated between this node and whoever checks exp/nbf. */
export const CLOCK_TOLERANCE_SECONDS = 5;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 4096;

export interface AccessTokenConfig {
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
}

export interface AccessTokenClaims {
  userId: string;
  organizationId: string;
  clientId: string;
  scopes: AppScope[];
  tokenId: string;
  familyId: string;
}

/** Whether a bearer token is shaped as a JWT (three dot-separated base64url parts, a JSON header). */
export function looksLikeJwt(token: string): boolean {
  return token.startsWith('eyJ') && token.length <= MAX_TOKEN_LENGTH && JWT_SHAPE.test(token);
}

export class AccessTokens {
  constructor(
    private readonly keys: AppSigningKeys,
    private readonly clock: Clock,
    readonly config: AccessTokenConfig,
  ) {}

  async issue(claims: Omit<AccessTokenClaims, 'tokenId'>): Promise<{ token: string; expiresIn: number; tokenId: string }> {
    const signer = await this.keys.signer(claims.organizationId);
    const now = Math.floor(this.clock.now() / 1000);
    const tokenId = randomBytes(16).toString('base64url');
    const token = await new SignJWT({
      org: claims.organizationId,
      scope: claims.scopes.join(' '),
      client_id: claims.clientId,
      fam: claims.familyId,
    })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: ACCESS_TOKEN_TYPE, kid: signer.kid })
      .setIssuer(this.config.issuer)
      .setAudience(this.config.audience)
      .setSubject(claims.userId)
      .setJti(tokenId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.config.lifetimeSeconds)
      .sign(signer.privateKey);
    return { token, expiresIn: this.config.lifetimeSeconds, tokenId };
  }

  /** The claims of a valid token; anything else throws AccessTokenInvalidError with the reason. */
  async verify(token: string): Promise<AccessTokenClaims> {
    if (!looksLikeJwt(token)) throw new AccessTokenInvalidError('malformed');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new AccessTokenInvalidError('malformed');
    }
    if (header.alg !== TOKEN_ALGORITHM) throw new AccessTokenInvalidError('algorithm');
    if (typeof header.kid !== 'string') throw new AccessTokenInvalidError('key_unknown');
    const key = await this.keys.verificationKey(header.kid);
    if (key === 'retired') throw new AccessTokenInvalidError('key_retired');
    if (!key) throw new AccessTokenInvalidError('key_unknown');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        typ: ACCESS_TOKEN_TYPE,
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['sub', 'jti', 'iat', 'nbf', 'exp'],
      }));
    } catch (error) {
      throw new AccessTokenInvalidError(refusalOf(error));
    }
    const { sub, jti, org, scope, client_id: clientId, fam } = payload;
    if (org !== key.organizationId || typeof clientId !== 'string' || typeof fam !== 'string' || typeof scope !== 'string')
      throw new AccessTokenInvalidError('claims');
    const scopes = scope.split(' ');
    if (!scopes.every(isAppScope)) throw new AccessTokenInvalidError('claims');
    return { userId: sub!, organizationId: org, clientId, scopes, tokenId: jti!, familyId: fam };
  }
}

function refusalOf(error: unknown) {
  if (error instanceof errors.JWTExpired) return 'expired' as const;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature' as const;
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return 'issuer' as const;
    if (error.claim === 'aud') return 'audience' as const;
    if (error.claim === 'nbf' || error.claim === 'iat') return 'not_yet_valid' as const;
    return 'claims' as const;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm' as const;
  return 'malformed' as const;
}
