/**
 * A real OpenID provider for the single sign-on tests: `oidc-provider` playing a company's
 * identity provider on an http loopback port, with an in-memory adapter, its own RSA signing key
 * (rotatable), one registered client, and an interaction that signs in whichever test user the test
 * chose with the claims it gave them (groups, amr, acr), or refuses a user removed from it.
 *
 * An attacker's hook: `tamper` rewrites the ID token in the token endpoint's answer (as a
 * man-in-the-middle or a hostile provider would), so tests can hand the relying party a token from
 * another issuer, for another audience, expired, signed with a retired key, `alg: none`, or with a
 * payload altered under a valid signature. `browse` plays the browser between the two.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import Provider from 'oidc-provider';

export interface IdpUser {
  sub: string;
  email: string;
  name?: string;
  groups: string[];
  /** Authentication methods the provider asserts (e.g. ['pwd'] or ['pwd', 'otp']). */
  amr?: string[];
  acr?: string;
}

export interface IdpKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

type Payload = Record<string, unknown>;

/** What the grant hook reads of oidc-provider's context. */
interface GrantContext {
  oidc: {
    provider: { Grant: new (init: { clientId: string; accountId: string }) => Grant };
    client?: { clientId: string };
    session?: { accountId?: string };
  };
}
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  save(): Promise<string>;
}

/** A minimal adapter over one Map (what oidc-provider asks of a store), so no development-only default is used. */
function memoryAdapter() {
  const store = new Map<string, { payload: Payload; expiresAt: number | null }>();
  const live = (key: string) => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt < Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MapAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Payload, expiresIn?: number) {
      store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
      if (this.model === 'Session' && typeof payload.uid === 'string')
        store.set(`uid:${payload.uid}`, { payload: { id }, expiresAt: null });
    }
    async find(id: string) {
      return live(this.key(id));
    }
    async findByUid(uid: string) {
      const ref = live(`uid:${uid}`);
      return ref ? live(this.key(String(ref.id))) : undefined;
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id: string) {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
    }
  };
}

export async function newIdpKey(): Promise<IdpKey> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwk };
}

export class TestIdp {
  readonly users = new Map<string, IdpUser>();
  /** The user the next interaction signs in. */
  next: string | null = null;
  /** Rewrites the ID token of the next token responses (null: unchanged). */
  tamper: ((idToken: string) => Promise<string> | string) | null = null;
  /** Every ID token the provider issued, as issued. */
  readonly issued: string[] = [];
  key!: IdpKey;
  readonly retiredKeys: IdpKey[] = [];
  private provider!: Provider;
  private server!: Server;
  issuer = '';
  readonly clientId = 'bulwark';
  readonly clientSecret = randomBytes(24).toString('base64url');

  private constructor(private readonly redirectUris: string[]) {}

  static async start(redirectUris: string[]): Promise<TestIdp> {
    const idp = new TestIdp(redirectUris);
    idp.server = createServer((req, res) => void idp.handle(req, res));
    await new Promise<void>((resolve) => idp.server.listen(0, '127.0.0.1', resolve));
    idp.issuer = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
    idp.key = await newIdpKey();
    idp.provider = idp.build();
    return idp;
  }

  addUser(user: IdpUser): IdpUser {
    this.users.set(user.sub, user);
    return user;
  }

  /** The provider replaces its signing key and stops publishing the old one (its JWKS holds only the new key). */
  async rotateKey(): Promise<void> {
    this.retiredKeys.push(this.key);
    this.key = await newIdpKey();
    this.provider = this.build();
  }

  /** Signs claims as the provider would (or with another key), for forged tokens. */
  async sign(claims: Payload, key: IdpKey = this.key): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  /**
   * Plays the browser: follows the provider's redirects (keeping its cookies) from the
   * authorization URL until the provider sends it back to `redirectPrefix`; returns that URL.
   */
  async browse(authorizationUrl: string, redirectPrefix: string): Promise<URL> {
    const jar = new Map<string, string>();
    let url = authorizationUrl;
    for (let hop = 0; hop < 20; hop++) {
      if (url.startsWith(redirectPrefix)) return new URL(url);
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const [name, value] = pair!.split('=');
        if (value) jar.set(name!.trim(), value);
        else jar.delete(name!.trim());
      }
      const location = res.headers.get('location');
      if (!location) throw new Error(`the provider stopped at ${url} with ${res.status}: ${await res.text()}`);
      url = new URL(location, url).href;
    }
    throw new Error('too many redirects at the provider');
  }

  private build(): Provider {
    const users = this.users;
    const provider = new Provider(this.issuer, {
      adapter: memoryAdapter() as never,
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: this.redirectUris,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [this.key.jwk as never] },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      acrValues: ['urn:example:mfa', 'urn:example:pwd'],
      // The company's provider puts how the user signed in (amr, acr) in every ID token.
      claims: {
        acr: null,
        amr: null,
        auth_time: null,
        sid: null,
        iss: null,
        openid: ['sub', 'amr', 'acr', 'auth_time'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
      },
      scopes: ['openid', 'email', 'profile', 'groups'],
      conformIdTokenClaims: false,
      pkce: { required: () => true },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      findAccount: async (_ctx: unknown, sub: string) => {
        const user = users.get(sub);
        if (!user) return undefined;
        return {
          accountId: sub,
          claims: async () => ({ sub, email: user.email, email_verified: true, name: user.name ?? sub, groups: user.groups }),
        };
      },
      // Consent is the company's, given once for all: every sign-in gets the scopes and claims asked for.
      loadExistingGrant: async (ctx: GrantContext) => {
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope('openid email profile groups');
        grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
        await grant.save();
        return grant;
      },
    });
    return provider;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.url?.startsWith('/interaction/')) {
        await this.interact(req, res);
        return;
      }
      if (req.method === 'POST' && req.url?.startsWith('/token')) this.watchTokens(res);
      this.provider.callback()(req, res);
    } catch (error) {
      res.statusCode = 500;
      res.end(String(error));
    }
  }

  /** The login page, automated: the chosen user signs in with their amr/acr, or a removed user is refused. */
  private async interact(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.provider.interactionDetails(req, res);
    const user = this.next ? this.users.get(this.next) : undefined;
    const result = user
      ? { login: { accountId: user.sub, ...(user.amr ? { amr: user.amr } : {}), ...(user.acr ? { acr: user.acr } : {}) } }
      : { error: 'access_denied', error_description: 'The account is not known here (removed at the provider)' };
    await this.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  /** Records the issued ID token and lets `tamper` replace it in the body before it leaves. */
  private watchTokens(res: ServerResponse): void {
    const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
    const write = (body: string) => {
      if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(body));
      end(body);
    };
    res.end = ((chunk?: unknown) => {
      const text = chunk === undefined ? '' : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      let body: Payload;
      try {
        body = JSON.parse(text) as Payload;
      } catch {
        return end(chunk);
      }
      if (typeof body.id_token !== 'string') return end(chunk);
      this.issued.push(body.id_token);
      if (!this.tamper) return end(chunk);
      void Promise.resolve(this.tamper(body.id_token)).then((forged) => write(JSON.stringify({ ...body, id_token: forged })));
      return res;
    }) as typeof res.end;
  }
}

/** The claims of a JWT, unverified (tests build forgeries from a real token). */
export function claimsOf(jwt: string): Payload {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Payload;
}

export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
