import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { cookieSignIn, insertConsumer, organizationId, signIn, type TestUser } from '../testing/accounts.js';
import {
  appSignIn,
  authorizationCode,
  authorizePath,
  pkce,
  postForm,
  redirected,
  registerClient,
  type RegisteredClient,
} from '../testing/apps.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient, HttpResponse } from '../testing/http.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';
import { cliActor } from '../accounts/roles.js';
import { openPlatform, type Platform } from '../platform.js';

const UNLIMITED_APPS = { apps: { authorizeRateLimitPerMinute: 10_000, tokenRateLimitPerMinute: 10_000 } };

for (const engine of ENGINES) {
  describe(`companion-app authorization (OAuth 2.1, PKCE) [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let ownerToken: string;
    let owner: TestUser;
    let orgId: string;
    let firstParty: RegisteredClient;
    let thirdParty: RegisteredClient;
    let consumerNumber = 0;

    before(async () => {
      ({ t, client, owner, token: ownerToken } = await startOwnerPlatform(engine, UNLIMITED_APPS));
      orgId = await organizationId(t);
      firstParty = await registerClient(client, ownerToken, {
        name: 'Brand app',
        redirectUris: ['com.brand.app:/oauth/callback', 'http://127.0.0.1:8765/cb'],
        scopes: ['devices:read', 'devices:control', 'devices:share', 'account'],
        firstParty: true,
      });
      thirdParty = await registerClient(client, ownerToken, {
        name: 'Home dashboard',
        redirectUris: ['https://dashboard.example/callback'],
        scopes: ['devices:read', 'account'],
        firstParty: false,
      });
    });
    after(() => t?.close());

    /** A new consumer signed in with a bearer session. */
    async function consumer(): Promise<{ user: TestUser; session: string }> {
      const user = await insertConsumer(t, `consumer${++consumerNumber}@example.com`, STRONG_PASSWORD);
      return { user, session: await signIn(t, user, client) };
    }

    const me = (accessToken: string) => client.get('/api/v1/me', { token: accessToken });
    const auditCount = async (action: string) => (await t.platform.audit.query({ action, organizationId: orgId })).entries.length;
    const refresh = (app: RegisteredClient, refreshToken: string) =>
      postForm(client, '/oauth/token', { grant_type: 'refresh_token', client_id: app.clientId, refresh_token: refreshToken });

    function assertTokenRefused(res: { status: number; text: string; body: any }, reason: string) {
      assert.equal(res.status, 401, res.text);
      assert.equal(res.body.error.code, 'app.access_token_invalid', res.text);
      assert.equal(res.body.error.details.reason, reason, res.text);
    }

    function assertOAuthError(res: HttpResponse, status: number, error: string, code: string) {
      assert.equal(res.status, status, res.text);
      assert.equal(res.body.error, error, res.text);
      assert.equal(res.body.code, code, res.text);
      assert.equal(typeof res.body.error_description, 'string');
      assert.equal(res.headers['cache-control'], 'no-store');
    }

    it('publishes its metadata (RFC 8414) and the JWKS of the keys that verify', async () => {
      const meta = await client.get('/.well-known/oauth-authorization-server');
      assert.equal(meta.status, 200, meta.text);
      assert.deepEqual(meta.body.code_challenge_methods_supported, ['S256']);
      assert.deepEqual(meta.body.response_types_supported, ['code']);
      assert.deepEqual(meta.body.grant_types_supported, ['authorization_code', 'refresh_token']);
      const { session } = await consumer();
      await appSignIn(client, session, firstParty, 'account');
      const jwks = await client.get('/oauth/jwks.json');
      assert.equal(jwks.status, 200, jwks.text);
      const key = jwks.body.keys.find((k: { kid: string }) => k.kid);
      assert.equal(key.kty, 'OKP');
      assert.equal(key.crv, 'Ed25519');
      assert.equal(key.alg, 'EdDSA');
      assert.equal(key.d, undefined, 'no private part is published');
    });

    it('signs a consumer into the first-party app with PKCE: code on the redirect with the state, tokens, and the app acts within its scopes', async () => {
      const { user, session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account devices:read');
      assert.equal(tokens.scope, 'account devices:read');
      assert.equal(tokens.expires_in, 600);
      assert.match(tokens.refresh_token, /^bwr_/);
      const res = await me(tokens.access_token);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.id, user.id);
      const [header, payload] = tokens.access_token
        .split('.')
        .slice(0, 2)
        .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.typ, 'at+jwt');
      assert.equal(typeof header.kid, 'string');
      assert.equal(payload.sub, user.id);
      assert.equal(payload.org, orgId);
      assert.equal(payload.client_id, firstParty.clientId);
      assert.equal(payload.iss, t.platform.apps.tokens.config.issuer);
      assert.equal(payload.aud, `${t.platform.apps.tokens.config.issuer}/api`);
      assert.equal(payload.exp - payload.iat, 600);
      assert.ok(await auditCount('app.grant_issued'));
    });

    it('asks the consumer to consent to a third-party app once, remembers it, and ends its grants when the consent is withdrawn', async () => {
      const { session } = await consumer();
      const { verifier, challenge } = pkce();
      const params = {
        response_type: 'code',
        client_id: thirdParty.clientId,
        redirect_uri: thirdParty.redirectUri,
        scope: 'devices:read',
        state: 'xyz',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      };
      const asked = await client.get(authorizePath(params), { token: session });
      assert.equal(asked.status, 200, asked.text);
      assert.equal(asked.body.consent_required, true);
      assert.equal(asked.body.client.name, 'Home dashboard');
      assert.deepEqual(asked.body.scopes, ['devices:read']);
      const granted = await client.post('/oauth/authorize/consent', { ...asked.body.request, decision: 'allow' }, { token: session });
      assert.equal(granted.status, 302, granted.text);
      const query = redirected(granted);
      assert.equal(query.get('state'), 'xyz');
      const exchanged = await postForm(client, '/oauth/token', {
        grant_type: 'authorization_code',
        client_id: thirdParty.clientId,
        code: query.get('code')!,
        redirect_uri: thirdParty.redirectUri,
        code_verifier: verifier,
      });
      assert.equal(exchanged.status, 200, exchanged.text);
      assert.ok(await auditCount('app.consent_granted'));

      // Asked again for the same scope: no consent step this time.
      await authorizationCode(client, session, thirdParty, 'devices:read', pkce().challenge);
      const listed = await client.get('/api/v1/me/apps', { token: session });
      assert.equal(listed.status, 200, listed.text);
      const entry = listed.body.apps.find((a: { clientId: string }) => a.clientId === thirdParty.clientId);
      assert.deepEqual(entry.consentedScopes, ['devices:read']);

      const withdrawn = await client.delete(`/api/v1/me/apps/${thirdParty.clientId}`, { token: session });
      assert.equal(withdrawn.status, 200, withdrawn.text);
      assert.equal(withdrawn.body.grantsEnded, 1);
      assert.ok(await auditCount('app.consent_withdrawn'));
      // The token's scope lacks `account` (GET /me), so a scoped route shows the revocation: the family is checked first.
      const refreshed = await refresh(thirdParty, exchanged.body.refresh_token);
      assertOAuthError(refreshed, 400, 'invalid_grant', 'app.refresh_token_invalid');
      const again = await client.get(authorizePath({ ...params, code_challenge: pkce().challenge }), { token: session });
      assert.equal(again.body.consent_required, true, 'consent is asked again after withdrawal');

      const denied = await client.post('/oauth/authorize/consent', { ...again.body.request, decision: 'deny' }, { token: session });
      assert.equal(redirected(denied).get('error'), 'access_denied');
    });

    it('takes the consent of a browser (cookie) session only with its CSRF token', async () => {
      const { user } = await consumer();
      const { client: browser, csrfToken } = await cookieSignIn(t, user);
      const asked = await browser.get(
        authorizePath({
          response_type: 'code',
          client_id: thirdParty.clientId,
          redirect_uri: thirdParty.redirectUri,
          scope: 'account',
          state: 'c1',
          code_challenge: pkce().challenge,
          code_challenge_method: 'S256',
        }),
      );
      assert.equal(asked.status, 200, asked.text);
      assert.equal(asked.body.consent_required, true);
      const forged = await browser.post('/oauth/authorize/consent', { ...asked.body.request, decision: 'allow' });
      assertOAuthError(forged, 403, 'access_denied', 'auth.csrf_failed');
      assert.equal(forged.headers.location, undefined);
      const granted = await browser.post(
        '/oauth/authorize/consent',
        { ...asked.body.request, decision: 'allow' },
        { headers: { 'x-csrf-token': csrfToken } },
      );
      assert.equal(granted.status, 302, granted.text);
      assert.ok(redirected(granted).get('code'));
    });

    it('refuses an authorization request without PKCE, with plain PKCE, or for the implicit flow: back on the redirect URI, with the state, audited', async () => {
      const { session } = await consumer();
      const base = {
        response_type: 'code',
        client_id: firstParty.clientId,
        redirect_uri: firstParty.redirectUri,
        scope: 'account',
        state: 's1',
      };
      const { challenge } = pkce();
      const cases: Array<[Record<string, string>, string, string]> = [
        [base, 'invalid_request', 'app.pkce_required'],
        [{ ...base, code_challenge: challenge, code_challenge_method: 'plain' }, 'invalid_request', 'app.pkce_method_unsupported'],
        [{ ...base, code_challenge: challenge }, 'invalid_request', 'app.pkce_method_unsupported'],
        [
          { ...base, response_type: 'token', code_challenge: challenge, code_challenge_method: 'S256' },
          'unsupported_response_type',
          'app.response_type_unsupported',
        ],
        [
          { ...base, scope: 'devices:read admin', code_challenge: challenge, code_challenge_method: 'S256' },
          'invalid_scope',
          'app.scope_invalid',
        ],
      ];
      for (const [params, error, code] of cases) {
        const res = await client.get(authorizePath(params), { token: session });
        assert.equal(res.status, 302, res.text);
        const query = redirected(res);
        assert.ok((res.headers.location as string).startsWith('com.brand.app:/oauth/callback?'));
        assert.equal(query.get('error'), error, `${JSON.stringify(params)} → ${res.headers.location}`);
        assert.equal(query.get('state'), 's1');
        assert.equal(query.get('code'), null);
        const audited = await t.platform.audit.query({ action: 'app.authorization_refused', organizationId: orgId });
        assert.ok(
          audited.entries.some((e) => e.details?.code === code),
          code,
        );
      }
      // Third-party apps may not ask for scopes they were not registered with.
      const { challenge: c2 } = pkce();
      const overreach = await client.get(
        authorizePath({
          ...base,
          client_id: thirdParty.clientId,
          redirect_uri: thirdParty.redirectUri,
          scope: 'devices:control',
          code_challenge: c2,
          code_challenge_method: 'S256',
        }),
        { token: session },
      );
      assert.equal(redirected(overreach).get('error'), 'invalid_scope');
    });

    it('never redirects to an unregistered redirect URI or for an unknown client, and needs a consumer session', async () => {
      const { session } = await consumer();
      const { challenge } = pkce();
      const base = {
        response_type: 'code',
        client_id: firstParty.clientId,
        scope: 'account',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      };
      for (const redirect_uri of [
        'https://evil.example/cb',
        'com.brand.app:/oauth/callback/',
        'com.brand.app:/oauth/callback?x=1',
        undefined,
      ]) {
        const res = await client.get(authorizePath({ ...base, redirect_uri }), { token: session });
        assertOAuthError(res, 400, 'invalid_request', 'app.redirect_uri_mismatch');
        assert.equal(res.headers.location, undefined);
      }
      const unknown = await client.get(authorizePath({ ...base, client_id: 'app_nosuchclient', redirect_uri: firstParty.redirectUri }), {
        token: session,
      });
      assertOAuthError(unknown, 400, 'invalid_request', 'app.client_invalid');
      assert.equal(unknown.headers.location, undefined);
      const anonymous = await client.get(authorizePath({ ...base, redirect_uri: firstParty.redirectUri }));
      assertOAuthError(anonymous, 401, 'login_required', 'auth.unauthenticated');
      const operator = await client.get(authorizePath({ ...base, redirect_uri: firstParty.redirectUri }), { token: ownerToken });
      assertOAuthError(operator, 403, 'access_denied', 'auth.forbidden');
    });

    it('sends a browser navigation to the hosted page, never to the redirect URI before it is known good, and answers scripts that ask for JSON with { location }', async () => {
      const { session } = await consumer();
      const navigate = { 'sec-fetch-mode': 'navigate', accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
      const json = { accept: 'application/json' };
      const request = (app: RegisteredClient, extra: Record<string, string | undefined> = {}) => ({
        response_type: 'code',
        client_id: app.clientId,
        redirect_uri: app.redirectUri,
        scope: 'account',
        state: 'nav1',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        ...extra,
      });
      const toPage = (res: HttpResponse, path: string) => {
        assert.equal(res.status, 302, res.text);
        assert.equal(
          res.headers.location,
          path.replace('/oauth/authorize?', '/app/authorize?'),
          'the hosted page on this origin, with the same query',
        );
        assert.equal(res.headers['cache-control'], 'no-store');
      };

      // Signed out, consent to ask, or a request that names no trusted redirect: the page, with the same query.
      for (const [params, token] of [
        [request(thirdParty), undefined],
        [request(firstParty), undefined],
        [request(thirdParty), session],
        [request(firstParty, { redirect_uri: 'https://evil.example/cb' }), session],
        [request(firstParty, { client_id: 'app_nosuchclient' }), session],
        [request(firstParty), ownerToken],
      ] as const) {
        const path = authorizePath(params);
        toPage(await client.get(path, { headers: navigate, ...(token ? { token } : {}) }), path);
      }
      // Older browsers without Fetch metadata: Accept preferring HTML is a navigation too.
      const older = authorizePath(request(thirdParty));
      toPage(await client.get(older, { headers: { accept: 'text/html,*/*;q=0.8' } }), older);
      // Nothing the query says chooses where the page is: a query that looks like another origin stays a query.
      const odd = `/oauth/authorize?redirect_uri=${encodeURIComponent('//evil.example/')}&client_id=x`;
      toPage(await client.get(odd, { headers: navigate }), odd);

      // Signed in with a first-party client: the navigation goes straight back to the app with the code.
      const straight = await client.get(authorizePath(request(firstParty)), { headers: navigate, token: session });
      assert.equal(straight.status, 302, straight.text);
      assert.ok(redirected(straight).get('code'));
      assert.ok((straight.headers.location as string).startsWith(firstParty.redirectUri));
      // A request refused once the client and redirect are good goes back to the app (RFC 6749), navigation or not.
      const refused = await client.get(authorizePath(request(firstParty, { code_challenge_method: 'plain' })), {
        headers: navigate,
        token: session,
      });
      assert.equal(redirected(refused).get('error'), 'invalid_request');

      // Scripts that ask for JSON keep the JSON answers, and get the redirect as { location }.
      const anonymous = await client.get(authorizePath(request(thirdParty)), { headers: json });
      assertOAuthError(anonymous, 401, 'login_required', 'auth.unauthenticated');
      const mismatch = await client.get(authorizePath(request(firstParty, { redirect_uri: 'https://evil.example/cb' })), {
        headers: json,
        token: session,
      });
      assertOAuthError(mismatch, 400, 'invalid_request', 'app.redirect_uri_mismatch');
      const located = await client.get(authorizePath(request(firstParty)), { headers: json, token: session });
      assert.equal(located.status, 200, located.text);
      assert.equal(located.headers.location, undefined);
      assert.ok(new URL(located.body.location).searchParams.get('code'));
      const asked = await client.get(authorizePath(request(thirdParty)), { headers: json, token: session });
      assert.equal(asked.body.consent_required, true, asked.text);

      // The consent answered as JSON: 200 { location } with the code, or access_denied; 302 without the Accept.
      const allowed = await client.post(
        '/oauth/authorize/consent',
        { ...asked.body.request, decision: 'allow' },
        { headers: json, token: session },
      );
      assert.equal(allowed.status, 200, allowed.text);
      const granted = new URL(allowed.body.location);
      assert.equal(`${granted.origin}${granted.pathname}`, thirdParty.redirectUri);
      assert.ok(granted.searchParams.get('code'));
      assert.equal(granted.searchParams.get('state'), 'nav1');
      const again = await client.get(authorizePath(request(thirdParty, { scope: 'devices:read' })), { headers: json, token: session });
      const denied = await client.post(
        '/oauth/authorize/consent',
        { ...again.body.request, decision: 'deny' },
        { headers: json, token: session },
      );
      assert.equal(denied.status, 200, denied.text);
      assert.equal(new URL(denied.body.location).searchParams.get('error'), 'access_denied');
      const plain = await client.post('/oauth/authorize/consent', { ...again.body.request, decision: 'deny' }, { token: session });
      assert.equal(plain.status, 302, plain.text);
    });

    it('tells the hosted page which app asks and for which brand, only for an active client and a registered redirect URI', async () => {
      const shown = await client.get(`/oauth/clients/${thirdParty.clientId}?redirect_uri=${encodeURIComponent(thirdParty.redirectUri)}`);
      assert.equal(shown.status, 200, shown.text);
      assert.deepEqual(shown.body, {
        clientId: thirdParty.clientId,
        name: 'Home dashboard',
        firstParty: false,
        organization: { slug: t.org, name: shown.body.organization.name },
      });
      assert.equal(typeof shown.body.organization.name, 'string', 'the brand, and nothing else: no redirect URIs, scopes or creator');
      assert.equal((await client.get(`/oauth/clients/${thirdParty.clientId}`)).status, 200);
      const mismatch = await client.get(
        `/oauth/clients/${thirdParty.clientId}?redirect_uri=${encodeURIComponent('https://evil.example/cb')}`,
      );
      assertOAuthError(mismatch, 400, 'invalid_request', 'app.redirect_uri_mismatch');
      assertOAuthError(await client.get('/oauth/clients/app_nosuchclient'), 400, 'invalid_request', 'app.client_invalid');
      const disabled = await registerClient(client, ownerToken, {
        name: 'Retired app',
        redirectUris: ['https://retired.example/cb'],
        scopes: ['account'],
        firstParty: false,
      });
      assert.equal((await client.post(`/api/v1/apps/clients/${disabled.clientId}/disable`, {}, { token: ownerToken })).status, 200);
      assertOAuthError(await client.get(`/oauth/clients/${disabled.clientId}`), 400, 'invalid_request', 'app.client_invalid');
    });

    it('refuses a code with a wrong or missing PKCE verifier or another redirect URI, and burns it (audited)', async () => {
      const { session } = await consumer();
      const exchange = (code: string, extra: Record<string, string | undefined>) =>
        postForm(client, '/oauth/token', {
          grant_type: 'authorization_code',
          client_id: firstParty.clientId,
          code,
          redirect_uri: firstParty.redirectUri,
          ...extra,
        });
      const good = pkce();
      const wrongVerifier = await exchange(await authorizationCode(client, session, firstParty, 'account', good.challenge), {
        code_verifier: pkce().verifier,
      });
      assertOAuthError(wrongVerifier, 400, 'invalid_grant', 'app.pkce_verifier_invalid');

      const missing = await exchange(await authorizationCode(client, session, firstParty, 'account', good.challenge), {
        code_verifier: undefined,
      });
      assertOAuthError(missing, 400, 'invalid_request', 'app.pkce_required');

      const code = await authorizationCode(client, session, firstParty, 'account', good.challenge);
      const otherRedirect = await exchange(code, { redirect_uri: 'http://127.0.0.1:8765/cb', code_verifier: good.verifier });
      assertOAuthError(otherRedirect, 400, 'invalid_grant', 'app.redirect_uri_mismatch');
      // The failed attempt spent the code: the right verifier no longer helps.
      const afterwards = await exchange(code, { code_verifier: good.verifier });
      assertOAuthError(afterwards, 400, 'invalid_grant', 'app.code_reused');
      const rejected = await t.platform.audit.query({ action: 'app.code_rejected', organizationId: orgId });
      assert.ok(rejected.entries.some((e) => e.details?.reason === 'app.pkce_verifier_invalid'));
      assert.ok(rejected.entries.some((e) => e.details?.reason === 'app.redirect_uri_mismatch'));

      const expired = pkce();
      const late = await authorizationCode(client, session, firstParty, 'account', expired.challenge);
      t.clock.advance(61_000);
      assertOAuthError(await exchange(late, { code_verifier: expired.verifier }), 400, 'invalid_grant', 'app.code_invalid');
      assertOAuthError(await exchange('bwc_guessed', { code_verifier: expired.verifier }), 400, 'invalid_grant', 'app.code_invalid');

      const password = await postForm(client, '/oauth/token', {
        grant_type: 'password',
        client_id: firstParty.clientId,
        username: 'a',
        password: 'b',
      });
      assertOAuthError(password, 400, 'unsupported_grant_type', 'app.grant_type_unsupported');
      const noClient = await postForm(client, '/oauth/token', {
        grant_type: 'refresh_token',
        client_id: 'app_nosuchclient',
        refresh_token: 'bwr_x',
      });
      assertOAuthError(noClient, 401, 'invalid_client', 'app.client_invalid');
    });

    it('revokes what a code gave when the code is used a second time (audited)', async () => {
      const { session } = await consumer();
      const { verifier, challenge } = pkce();
      const code = await authorizationCode(client, session, firstParty, 'account', challenge);
      const params = {
        grant_type: 'authorization_code',
        client_id: firstParty.clientId,
        code,
        redirect_uri: firstParty.redirectUri,
        code_verifier: verifier,
      };
      const first = await postForm(client, '/oauth/token', params);
      assert.equal(first.status, 200, first.text);
      assert.equal((await me(first.body.access_token)).status, 200);
      const second = await postForm(client, '/oauth/token', params);
      assertOAuthError(second, 400, 'invalid_grant', 'app.code_reused');
      assertTokenRefused(await me(first.body.access_token), 'revoked');
      assertOAuthError(await refresh(firstParty, first.body.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
      const audited = await t.platform.audit.query({ action: 'app.code_reused', organizationId: orgId });
      assert.equal(audited.entries[0]!.details?.grantRevoked, true);
    });

    it('rotates refresh tokens; a rotated one used again revokes the whole family, access tokens included (audited)', async () => {
      const { session } = await consumer();
      const first = await appSignIn(client, session, firstParty, 'account devices:read');
      const second = await refresh(firstParty, first.refresh_token);
      assert.equal(second.status, 200, second.text);
      assert.notEqual(second.body.refresh_token, first.refresh_token);
      const narrowed = await postForm(client, '/oauth/token', {
        grant_type: 'refresh_token',
        client_id: firstParty.clientId,
        refresh_token: second.body.refresh_token,
        scope: 'devices:read',
      });
      assert.equal(narrowed.status, 200, narrowed.text);
      assert.equal(narrowed.body.scope, 'devices:read');
      assert.equal((await me(second.body.access_token)).status, 200);

      // Another client cannot use this family's refresh token.
      const stolenByOther = await refresh(thirdParty, narrowed.body.refresh_token);
      assertOAuthError(stolenByOther, 400, 'invalid_grant', 'app.refresh_token_invalid');

      const reused = await refresh(firstParty, first.refresh_token);
      assertOAuthError(reused, 400, 'invalid_grant', 'app.refresh_token_reused');
      assertOAuthError(await refresh(firstParty, narrowed.body.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
      assertTokenRefused(await me(second.body.access_token), 'revoked');
      const audited = await t.platform.audit.query({ action: 'app.refresh_token_reused', organizationId: orgId });
      assert.equal(audited.entries[0]!.outcome, 'denied');
      assert.equal(audited.entries[0]!.details?.familyRevoked, true);
    });

    it('ends every grant of the user on sign-out: the access token replayed after logout is refused', async () => {
      const { session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account');
      assert.equal((await me(tokens.access_token)).status, 200);
      const out = await client.post('/api/v1/auth/logout', undefined, { token: session });
      assert.equal(out.status, 200, out.text);
      assertTokenRefused(await me(tokens.access_token), 'revoked');
      assertOAuthError(await refresh(firstParty, tokens.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
      assert.ok(await auditCount('app.grants_ended'));
    });

    it('ends every grant of the user on a password change', async () => {
      const { user, session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account');
      const changed = await client.post(
        '/api/v1/me/password',
        { currentPassword: user.password, newPassword: 'a different horse battery staple 9' },
        { token: session },
      );
      assert.equal(changed.status, 200, changed.text);
      assertTokenRefused(await me(tokens.access_token), 'revoked');
      assertOAuthError(await refresh(firstParty, tokens.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
    });

    it("deletes the consumer's consents and grants with the account, and its app tokens stop working", async () => {
      const { user, session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account');
      const stepped = await client.post('/api/v1/auth/step-up', { password: user.password }, { token: session });
      assert.equal(stepped.status, 200, stepped.text);
      const deleted = await client.delete('/api/v1/me', { token: session });
      assert.equal(deleted.status, 200, deleted.text);
      assertTokenRefused(await me(tokens.access_token), 'revoked');
      assertOAuthError(await refresh(firstParty, tokens.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
      for (const table of ['app_token_families', 'app_authorization_codes', 'app_consents'] as const) {
        const rows = await t.platform.db.selectFrom(table).select('id').where('user_id', '=', user.id).execute();
        assert.equal(rows.length, 0, table);
      }
    });

    it('revokes a grant through the revocation endpoint (RFC 7009), and answers an unknown token the same', async () => {
      const { session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account');
      const unknown = await postForm(client, '/oauth/revoke', { token: 'bwr_nothing', client_id: firstParty.clientId });
      assert.equal(unknown.status, 200, unknown.text);
      const byOtherClient = await postForm(client, '/oauth/revoke', { token: tokens.refresh_token, client_id: thirdParty.clientId });
      assert.equal(byOtherClient.status, 200);
      assert.equal((await me(tokens.access_token)).status, 200, 'another client cannot revoke this grant');
      const revoked = await postForm(client, '/oauth/revoke', {
        token: tokens.refresh_token,
        client_id: firstParty.clientId,
        token_type_hint: 'refresh_token',
      });
      assert.equal(revoked.status, 200, revoked.text);
      assertTokenRefused(await me(tokens.access_token), 'revoked');
      const viaAccess = await appSignIn(client, session, firstParty, 'account');
      await postForm(client, '/oauth/revoke', { token: viaAccess.access_token, client_id: firstParty.clientId });
      assertOAuthError(await refresh(firstParty, viaAccess.refresh_token), 400, 'invalid_grant', 'app.refresh_token_invalid');
      assert.ok(await auditCount('app.grant_revoked'));
    });

    it('keeps app tokens to routes that name a scope the token holds', async () => {
      const { session } = await consumer();
      const narrow = await appSignIn(client, session, firstParty, 'devices:read');
      const onScopedRoute = await me(narrow.access_token);
      assert.equal(onScopedRoute.status, 403, onScopedRoute.text);
      assert.equal(onScopedRoute.body.error.code, 'auth.insufficient_scope');
      const wide = await appSignIn(client, session, firstParty, 'account devices:read devices:control devices:share');
      for (const [method, path] of [
        ['GET', '/api/v1/me/sessions'],
        ['POST', '/api/v1/auth/logout'],
        ['GET', '/api/v1/me/apps'],
        ['POST', '/api/v1/auth/step-up'],
      ] as const) {
        const res = await client.request(method, path, { token: wide.access_token });
        assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
        assert.equal(res.body.error.code, 'auth.app_token_not_allowed', `${method} ${path}`);
      }
      // An app cannot authorize another app with its own token.
      const chained = await client.get(
        authorizePath({
          response_type: 'code',
          client_id: firstParty.clientId,
          redirect_uri: firstParty.redirectUri,
          scope: 'account',
          code_challenge: pkce().challenge,
          code_challenge_method: 'S256',
        }),
        { token: wide.access_token },
      );
      assert.equal(chained.status, 403, chained.text);
    });

    it('refuses forged and out-of-date access tokens: wrong audience or issuer, alg none, HS256 keyed with the public key, expired, not yet valid, foreign key (audited)', async () => {
      const { session } = await consumer();
      const tokens = await appSignIn(client, session, firstParty, 'account');
      const [headerPart, payloadPart] = tokens.access_token.split('.');
      const header = JSON.parse(Buffer.from(headerPart!, 'base64url').toString());
      const claims = JSON.parse(Buffer.from(payloadPart!, 'base64url').toString());
      const signer = await t.platform.apps.keys.signer(orgId);
      const now = Math.floor(t.clock.now() / 1000);
      const forge = (overrides: Record<string, unknown>, key = signer.privateKey, protectedHeader = header) =>
        new SignJWT({ ...claims, ...overrides }).setProtectedHeader(protectedHeader).sign(key);

      assertTokenRefused(await me(await forge({ aud: 'https://other.example/api' })), 'audience');
      assertTokenRefused(await me(await forge({ iss: 'https://evil.example' })), 'issuer');
      assertTokenRefused(await me(await forge({ iat: now - 1200, nbf: now - 1200, exp: now - 600 })), 'expired');
      assertTokenRefused(await me(await forge({ iat: now + 600, nbf: now + 600, exp: now + 1200 })), 'not_yet_valid');
      assertTokenRefused(await me(await forge({ sub: 'someone-else' })), 'claims');
      const foreign = await generateKeyPair('EdDSA');
      assertTokenRefused(await me(await forge({}, foreign.privateKey as never)), 'signature');

      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const none = `${b64({ alg: 'none', typ: 'at+jwt', kid: header.kid })}.${payloadPart}.`;
      assertTokenRefused(await me(none), 'algorithm');
      const jwks = (await client.get('/oauth/jwks.json')).body.keys as Array<{ kid: string; x: string }>;
      const publicJwk = jwks.find((k) => k.kid === header.kid)!;
      for (const secret of [JSON.stringify(publicJwk), publicJwk.x, Buffer.from(publicJwk.x, 'base64url')]) {
        const signingInput = `${b64({ alg: 'HS256', typ: 'at+jwt', kid: header.kid })}.${payloadPart}`;
        const hs256 = `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
        assertTokenRefused(await me(hs256), 'algorithm');
      }
      assertTokenRefused(
        await me(`${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'no-such-kid' })}.${payloadPart}.${tokens.access_token.split('.')[2]}`),
        'key_unknown',
      );

      t.clock.advance(11 * 60_000);
      assertTokenRefused(await me(tokens.access_token), 'expired');
      const refused = await t.platform.audit.query({ action: 'app.access_token_refused' });
      const reasons = new Set(refused.entries.map((e) => e.details?.reason));
      for (const reason of ['audience', 'issuer', 'expired', 'not_yet_valid', 'algorithm', 'signature'])
        assert.ok(reasons.has(reason), reason);
    });

    it('rotates signing keys with overlap and refuses a retired kid; the API and the schedule both do it, audited', async () => {
      const { session } = await consumer();
      const before = await appSignIn(client, session, firstParty, 'account');
      const oldKid = JSON.parse(Buffer.from(before.access_token.split('.')[0]!, 'base64url').toString()).kid;
      const rotated = await client.post('/api/v1/apps/keys/rotate', undefined, { token: ownerToken });
      assert.equal(rotated.status, 201, rotated.text);
      assert.notEqual(rotated.body.kid, oldKid);
      assert.equal((await me(before.access_token)).status, 200, 'the previous key verifies during the overlap');
      const after = await appSignIn(client, session, firstParty, 'account');
      assert.equal(JSON.parse(Buffer.from(after.access_token.split('.')[0]!, 'base64url').toString()).kid, rotated.body.kid);
      const published = (await client.get('/oauth/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      assert.ok(published.includes(oldKid) && published.includes(rotated.body.kid));

      const retired = await client.post(`/api/v1/apps/keys/${oldKid}/retire`, undefined, { token: ownerToken });
      assert.equal(retired.status, 200, retired.text);
      assert.equal(retired.body.status, 'retired');
      assertTokenRefused(await me(before.access_token), 'key_retired');
      assert.equal((await me(after.access_token)).status, 200);
      assert.ok(!(await client.get('/oauth/jwks.json')).body.keys.some((k: { kid: string }) => k.kid === oldKid));
      const listed = await client.get('/api/v1/apps/keys', { token: ownerToken });
      assert.equal(listed.body.keys.find((k: { kid: string }) => k.kid === oldKid).status, 'retired');
      assert.ok(await auditCount('app.signing_key_rotated'));
      assert.ok(await auditCount('app.signing_key_retired'));

      // The schedule: past its lifetime the active key rotates; past the overlap the previous one retires.
      t.clock.advance(91 * 24 * 3_600_000);
      assert.deepEqual(await t.platform.apps.keys.tick(), { rotated: 1, retired: 0 });
      t.clock.advance(25 * 3_600_000);
      assert.deepEqual(await t.platform.apps.keys.tick(), { rotated: 0, retired: 1 });
      ownerToken = await signIn(t, owner, client); // the owner's session idled out while the clock moved on
      const statuses = (await client.get('/api/v1/apps/keys', { token: ownerToken })).body.keys.map((k: { status: string }) => k.status);
      assert.deepEqual(
        statuses.filter((s: string) => s !== 'retired'),
        ['active'],
      );
    });

    it('a key rotated or retired on one node is followed by another node sharing the database', async () => {
      const other = await openPlatform(t.config, { database: t.database, clock: t.clock, env: {} });
      try {
        const { session } = await consumer();
        const authenticateOn = (platform: Platform, token: string) =>
          platform.accounts.authenticator.authenticate(token, '127.0.0.1', 'bearer').then(
            (result) => result?.actor.via,
            (error: { details?: { reason?: string } }) => error.details?.reason,
          );
        const before = await appSignIn(client, session, firstParty, 'account');
        assert.equal(await authenticateOn(other, before.access_token), 'app');
        const kid = JSON.parse(Buffer.from(before.access_token.split('.')[0]!, 'base64url').toString()).kid as string;
        const rotated = await other.apps.keys.rotate(cliActor(orgId), orgId);
        t.clock.advance(31_000);
        const after = await appSignIn(client, session, firstParty, 'account');
        assert.equal(
          JSON.parse(Buffer.from(after.access_token.split('.')[0]!, 'base64url').toString()).kid,
          rotated.kid,
          'this node signs with the other node’s new key',
        );
        assert.equal(await authenticateOn(other, after.access_token), 'app');
        await t.platform.apps.keys.retire(cliActor(orgId), orgId, kid);
        t.clock.advance(31_000);
        assert.equal(await authenticateOn(other, before.access_token), 'key_retired');
      } finally {
        await other.close();
      }
    });

    it('lets only org:manage operators register clients with safe redirect URIs, and a disabled client loses its grants', async () => {
      for (const uri of [
        'http://dashboard.example/cb',
        'https://dashboard.example/cb#frag',
        'javascript:alert(1)',
        'https://user:pw@x.example/cb',
        'myapp:/cb',
      ]) {
        const res = await client.post(
          '/api/v1/apps/clients',
          { name: 'x', redirectUris: [uri], scopes: ['account'], firstParty: false },
          { token: ownerToken },
        );
        assert.equal(res.status, 400, `${uri}: ${res.text}`);
        assert.equal(res.body.error.code, 'app.redirect_uri_invalid');
      }
      const badScope = await client.post(
        '/api/v1/apps/clients',
        { name: 'x', redirectUris: ['https://a.example/cb'], scopes: ['admin'], firstParty: false },
        { token: ownerToken },
      );
      assert.equal(badScope.body.error.code, 'app.scope_invalid');
      const { session } = await consumer();
      const byConsumer = await client.post(
        '/api/v1/apps/clients',
        { name: 'x', redirectUris: ['https://a.example/cb'], scopes: ['account'], firstParty: true },
        { token: session },
      );
      assert.equal(byConsumer.status, 403);

      const doomed = await registerClient(client, ownerToken, {
        name: 'Doomed',
        redirectUris: ['https://doomed.example/cb'],
        scopes: ['account'],
        firstParty: true,
      });
      const tokens = await appSignIn(client, session, doomed, 'account');
      const disabled = await client.post(`/api/v1/apps/clients/${doomed.clientId}/disable`, undefined, { token: ownerToken });
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal(disabled.body.status, 'disabled');
      assertTokenRefused(await me(tokens.access_token), 'revoked');
      assertOAuthError(await refresh(doomed, tokens.refresh_token), 401, 'invalid_client', 'app.client_invalid');
      const listed = await client.get('/api/v1/apps/clients', { token: ownerToken });
      assert.ok(
        listed.body.clients.some((c: { clientId: string; status: string }) => c.clientId === doomed.clientId && c.status === 'disabled'),
      );
      assert.ok(await auditCount('app.client_created'));
      assert.ok(await auditCount('app.client_disabled'));
    });

    it('takes the token request as JSON too, and refuses a parameter sent twice', async () => {
      const { session } = await consumer();
      const { verifier, challenge } = pkce();
      const code = await authorizationCode(client, session, firstParty, 'account', challenge);
      const twice = await client.request('POST', '/oauth/token', {
        raw: `grant_type=authorization_code&code=${code}&code=${code}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assertOAuthError(twice, 400, 'invalid_request', 'app.request_invalid');
      const json = await client.post('/oauth/token', {
        grant_type: 'authorization_code',
        client_id: firstParty.clientId,
        code,
        redirect_uri: firstParty.redirectUri,
        code_verifier: verifier,
      });
      assert.equal(json.status, 200, json.text);
    });

    it('bounds the live grants of one consumer for one app, and deletes ended grants a month later', async () => {
      const { user, session } = await consumer();
      const oldest = await appSignIn(client, session, firstParty, 'account');
      for (let i = 0; i < 20; i++) await appSignIn(client, session, firstParty, 'account');
      assertTokenRefused(await me(oldest.access_token), 'revoked');
      const grants = () =>
        t.platform.db.selectFrom('app_token_families').select(['id', 'revoked_at']).where('user_id', '=', user.id).execute();
      assert.equal((await grants()).filter((g) => g.revoked_at === null).length, 20);
      t.clock.advance(31 * 24 * 3_600_000);
      await t.platform.apps.grants.prune();
      const left = await grants();
      assert.equal(left.length, 20, 'the superseded grant is gone, the live ones stay');
      assert.ok(left.every((g) => g.revoked_at === null));
    });
  });
}

describe('rate limits of the OAuth endpoints', () => {
  const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
  let t: TestPlatform;
  let client: HttpClient;
  before(
    async () =>
      ({ t, client } = await startOwnerPlatform(sqlite, { apps: { authorizeRateLimitPerMinute: 3, tokenRateLimitPerMinute: 3 } })),
  );
  after(() => t?.close());

  it('answers 429 temporarily_unavailable with Retry-After past the limit of /oauth/token', async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await postForm(client, '/oauth/token', { grant_type: 'refresh_token', client_id: 'app_x', refresh_token: 'bwr_x' });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    assert.equal(last!.body.error, 'temporarily_unavailable');
    assert.ok(Number(last!.headers['retry-after']) > 0);
  });
});

describe('a node without the companion app build', () => {
  const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
  let t: TestPlatform;
  let client: HttpClient;
  before(async () => ({ t, client } = await startOwnerPlatform(sqlite, { http: { consoleDir: null } })));
  after(() => t?.close());

  it('answers a signed-out navigation to /oauth/authorize with the RFC 6749 error, not a redirect to a hosted page it does not serve', async () => {
    const path = authorizePath({ response_type: 'code', client_id: 'app_any', redirect_uri: 'https://app.example/cb', state: 's' });
    const res = await client.get(path, { headers: { 'sec-fetch-mode': 'navigate', accept: 'text/html' } });
    assert.equal(res.status, 401, res.text);
    assert.equal(res.headers.location, undefined);
    assert.equal(res.body.error, 'login_required');
  });
});
