import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DAY, MINUTE } from '../clock.js';
import { sealedKeyId } from '../keys/custody.js';
import { rotateMasterKey } from '../keys/rotation.js';
import { createOperator, enrolMfa, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpResponse } from '../testing/http.js';
import { base64url, claimsOf, TestIdp } from '../testing/oidc-idp.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { STRONG_PASSWORD, totp, type TestPlatform } from '../testing/server.js';
import { hashPassword } from './passwords.js';

const GROUPS = { 'bulwark-owners': 'owner', 'bulwark-admins': 'admin', 'bulwark-operators': 'operator' };

for (const engine of ENGINES) {
  describe(`operators' single sign-on through a real OpenID provider [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    let ownerToken: string;
    let idp: TestIdp;
    let redirectUri: string;

    before(async () => {
      ({ t, owner, token: ownerToken } = await startOwnerPlatform(engine));
      redirectUri = `https://localhost:${t.server.port}/api/v1/auth/sso/${t.org}/callback`;
      idp = await TestIdp.start([redirectUri]);
      await configure({});
    });
    after(async () => {
      await idp?.close();
      await t?.close();
    });

    async function stepUp(): Promise<void> {
      const res = await t.client().post('/api/v1/auth/step-up', { code: await totp(owner.secret!, t.clock) }, { token: ownerToken });
      assert.equal(res.status, 200, res.text);
      t.clock.advance(30_000);
    }

    async function configure(changes: Record<string, unknown>): Promise<HttpResponse> {
      await stepUp();
      const res = await t.client().put(
        '/api/v1/org/sso',
        {
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: idp.clientSecret,
          redirectUri,
          scopes: ['openid', 'email', 'profile', 'groups'],
          roleClaim: 'groups',
          roleMapping: GROUPS,
          defaultRole: null,
          mfaAcrValues: ['urn:example:mfa'],
          ...changes,
        },
        { token: ownerToken },
      );
      assert.equal(res.status, 200, res.text);
      return res;
    }

    /** The whole browser round trip: start at Bulwark, sign in at the provider as `sub`, come back to the callback. */
    async function ssoSignIn(
      sub: string | null,
      options: { mode?: 'token' | 'cookie' } = {},
    ): Promise<HttpResponse & { callback: string }> {
      idp.next = sub;
      const browser = t.client(true);
      const start = await browser.get(`/api/v1/auth/sso/${t.org}/start?mode=${options.mode ?? 'token'}`);
      assert.equal(start.status, 302, start.text);
      const location = String(start.headers.location);
      const authorization = new URL(location);
      assert.equal(authorization.origin, idp.issuer);
      assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(authorization.searchParams.get('state') && authorization.searchParams.get('nonce'));
      const back = await idp.browse(location, redirectUri);
      const callback = back.pathname + back.search;
      return { ...(await browser.get(callback)), callback };
    }

    async function lastFailure(code: string) {
      const { entries } = await t.platform.audit.query({ action: 'auth.sso_login' });
      return entries.find((e) => e.outcome === 'failure' && (e.details as { code?: string })?.code === code);
    }

    async function refusedWith(res: HttpResponse, status: number, code: string, reason?: RegExp): Promise<void> {
      assert.equal(res.status, status, res.text);
      assert.equal(res.body.error.code, code, res.text);
      if (reason) assert.match(`${res.body.error.details?.reason} ${res.body.error.message}`, reason, res.text);
      assert.ok(await lastFailure(code), `the refusal ${code} is audited`);
    }

    it('creates the operator just in time with the role its group maps to, and signs them in', async () => {
      idp.addUser({ sub: 'u-oper', email: 'Oper@Example.com', groups: ['staff', 'bulwark-operators'], amr: ['pwd'] });
      const res = await ssoSignIn('u-oper');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'ok');
      assert.equal(res.body.user.role, 'operator');
      assert.equal(res.body.user.email, 'oper@example.com');
      const session = await t.client().get('/api/v1/auth/session', { token: res.body.token });
      assert.equal(session.status, 200);
      assert.equal(session.body.user.id, res.body.user.id);
      // The SSO session is bounded by the organization's maximum (60 minutes by default).
      assert.ok(Date.parse(res.body.expiresAt) <= t.clock.now() + 60 * MINUTE);

      const again = await ssoSignIn('u-oper');
      assert.equal(again.body.user.id, res.body.user.id, 'matched by issuer + subject: the same account');
      const created = await t.platform.audit.query({ action: 'user.created', targetId: res.body.user.id });
      assert.equal((created.entries[0]!.details as { via: string }).via, 'sso');
    });

    it('an account made by SSO never signs in with a password, not even one set through a reset; it steps up by signing in again', async () => {
      const res = await ssoSignIn('u-oper');
      const step = await t.client().post('/api/v1/auth/step-up', { password: 'anything at all 1234' }, { token: res.body.token });
      assert.equal(step.status, 403, step.text);
      assert.equal(step.body.error.code, 'auth.sso_required');
      await t.platform.accounts.store.updateUser(res.body.user.id, { password_hash: await hashPassword(STRONG_PASSWORD) });
      const login = await t
        .client()
        .post('/api/v1/auth/login', { organization: t.org, email: 'oper@example.com', password: STRONG_PASSWORD });
      assert.equal(login.status, 403, login.text);
      assert.equal(login.body.error.code, 'auth.sso_required');
      await t.platform.accounts.store.updateUser(res.body.user.id, { password_hash: null });
    });

    it('signs in with a cookie and CSRF token in cookie mode', async () => {
      const res = await ssoSignIn('u-oper', { mode: 'cookie' });
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.csrfToken);
      assert.equal(res.body.token, undefined);
      assert.match(String(res.headers['set-cookie']), /__Host-bulwark_session=/);
    });

    it('matches by subject, never by email: another subject with a password account’s address is refused', async () => {
      await createOperator(t, 'taken@example.com', 'operator');
      idp.addUser({ sub: 'u-impostor', email: 'taken@example.com', groups: ['bulwark-owners'], amr: ['mfa'] });
      await refusedWith(await ssoSignIn('u-impostor'), 403, 'sso.account_conflict');
    });

    it('asks for Bulwark MFA when the provider does not assert it for a role the policy names', async () => {
      idp.addUser({ sub: 'u-admin', email: 'admin-sso@example.com', groups: ['bulwark-admins'], amr: ['pwd'] });
      const first = await ssoSignIn('u-admin');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.status, 'mfa_enrollment_required');
      const enrolled = await enrolMfa(t, first.body.token);
      // Enrolled: the next SSO sign-in without MFA at the provider stops at the TOTP step.
      const second = await ssoSignIn('u-admin');
      assert.equal(second.body.status, 'mfa_required');
      const denied = await t.client().get('/api/v1/users', { token: second.body.token });
      assert.equal(denied.status, 403);
      const done = await t.client().post('/api/v1/auth/mfa', { code: await totp(enrolled.secret, t.clock) }, { token: second.body.token });
      assert.equal(done.body.status, 'ok', done.text);
      t.clock.advance(30_000);
      assert.ok(Date.parse(done.body.expiresAt) <= t.clock.now() + 60 * MINUTE, 'the bound holds after the MFA step');
    });

    it('accepts the provider’s MFA (amr or a configured acr) instead of Bulwark’s', async () => {
      idp.addUser({ sub: 'u-admin-mfa', email: 'admin-mfa@example.com', groups: ['bulwark-admins'], amr: ['pwd', 'otp'] });
      const viaAmr = await ssoSignIn('u-admin-mfa');
      assert.equal(viaAmr.body.status, 'ok', JSON.stringify(claimsOf(idp.issued.at(-1)!)));
      idp.addUser({ sub: 'u-admin-acr', email: 'admin-acr@example.com', groups: ['bulwark-admins'], acr: 'urn:example:mfa' });
      assert.equal((await ssoSignIn('u-admin-acr')).body.status, 'ok');
    });

    it('makes the roles that need MFA configurable: operators too', async () => {
      await stepUp();
      const set = await t
        .client()
        .put('/api/v1/org/mfa-policy', { mfaRequiredRoles: ['owner', 'admin', 'operator'] }, { token: ownerToken });
      assert.equal(set.status, 200, set.text);
      idp.addUser({ sub: 'u-oper2', email: 'oper2@example.com', groups: ['bulwark-operators'], amr: ['pwd'] });
      assert.equal((await ssoSignIn('u-oper2')).body.status, 'mfa_enrollment_required');
      await stepUp();
      await t.client().put('/api/v1/org/mfa-policy', { mfaRequiredRoles: ['owner', 'admin'] }, { token: ownerToken });
      assert.equal((await ssoSignIn('u-oper2')).body.status, 'ok');
      const audit = await t.platform.audit.query({ action: 'org.mfa_policy_changed' });
      assert.equal(audit.entries.length, 2);
    });

    it('refuses a configuration that cannot work, with the field named', async () => {
      await stepUp();
      const base = { issuer: idp.issuer, clientId: idp.clientId, redirectUri };
      for (const [body, field] of [
        [{ ...base, issuer: 'http://idp.example.com' }, 'issuer'],
        [{ ...base, scopes: ['email'] }, 'scopes'],
        [{ ...base, breakGlassUserId: 'nobody' }, 'breakGlassUserId'],
        [{ ...base, roleClaim: 'has space' }, 'roleClaim'],
      ] as const) {
        const res = await t.client().put('/api/v1/org/sso', body, { token: ownerToken });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.error.code, 'sso.config_invalid');
        assert.equal(res.body.error.details.field, field);
      }
      const badRole = await t.client().put('/api/v1/org/sso', { ...base, roleMapping: { x: 'superuser' } }, { token: ownerToken });
      assert.equal(badRole.status, 400);
    });

    it('removing SSO makes its start a 404 sso.not_configured; configuring again restores it', async () => {
      await stepUp();
      assert.equal((await t.client().delete('/api/v1/org/sso', { token: ownerToken })).status, 200);
      const start = await t.client().get(`/api/v1/auth/sso/${t.org}/start`);
      assert.equal(start.status, 404);
      assert.equal(start.body.error.code, 'sso.not_configured');
      assert.equal((await t.client().get('/api/v1/auth/sso/no-such-org/start')).body.error.code, 'sso.not_configured');
      await configure({});
      assert.equal((await ssoSignIn('u-oper')).status, 200);
    });

    it('refuses an identity whose groups map to no role when no default role is set', async () => {
      idp.addUser({ sub: 'u-nogroup', email: 'nogroup@example.com', groups: ['marketing'] });
      await refusedWith(await ssoSignIn('u-nogroup'), 403, 'sso.no_role');
    });

    it('refuses a callback from another browser, and a callback replayed (state used once)', async () => {
      idp.next = 'u-oper';
      const a = t.client(true);
      const start = await a.get(`/api/v1/auth/sso/${t.org}/start?mode=token`);
      const back = await idp.browse(String(start.headers.location), redirectUri);
      const callback = back.pathname + back.search;
      await refusedWith(await t.client(true).get(callback), 401, 'sso.state_invalid', /other_browser/);
      // The state was consumed by the refused attempt: even the right browser cannot use it now.
      await refusedWith(await a.get(callback), 401, 'sso.state_invalid', /unknown_or_used/);

      const ok = await ssoSignIn('u-oper');
      assert.equal(ok.status, 200);
      const browser = t.client(true);
      await browser.get(`/api/v1/auth/sso/${t.org}/start`);
      await refusedWith(await browser.get(ok.callback), 401, 'sso.state_invalid');
    });

    describe('forged ID tokens (the provider’s answer rewritten on its way)', () => {
      after(() => {
        idp.tamper = null;
      });

      const forged = async (rewrite: (token: string) => Promise<string> | string) => {
        idp.tamper = rewrite;
        try {
          return await ssoSignIn('u-oper');
        } finally {
          idp.tamper = null;
        }
      };

      it('refuses an ID token from another issuer', async () => {
        const res = await forged((tok) => idp.sign({ ...claimsOf(tok), iss: 'https://evil.example' }));
        await refusedWith(res, 401, 'sso.id_token_invalid', /"iss" \(issuer\)/);
      });

      it('refuses an ID token for another audience', async () => {
        const res = await forged((tok) => idp.sign({ ...claimsOf(tok), aud: 'another-client' }));
        await refusedWith(res, 401, 'sso.id_token_invalid', /"aud" \(audience\)/);
      });

      it('refuses an expired ID token', async () => {
        const now = Math.floor(Date.now() / 1000);
        const res = await forged((tok) => idp.sign({ ...claimsOf(tok), iat: now - 1800, exp: now - 900 }));
        await refusedWith(res, 401, 'sso.id_token_invalid', /TIMESTAMP/);
      });

      it('refuses an ID token replayed from an earlier sign-in (its nonce is not this one’s)', async () => {
        const earlier = idp.issued.at(-1)!;
        const res = await forged(() => earlier);
        await refusedWith(res, 401, 'sso.id_token_invalid', /"nonce" claim/);
      });

      it('refuses alg: none', async () => {
        const res = await forged((tok) => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claimsOf(tok))}.`);
        await refusedWith(res, 401, 'sso.id_token_invalid', /unexpected JWT "alg"/);
      });

      it('refuses a group claim forged in the payload under the original signature', async () => {
        const res = await forged((tok) => {
          const [header, , signature] = tok.split('.');
          return `${header}.${base64url({ ...claimsOf(tok), groups: ['bulwark-owners'] })}.${signature}`;
        });
        await refusedWith(res, 401, 'sso.id_token_invalid', /signature verification failed/);
        const user = await t.platform.accounts.store.userByEmail(
          (await t.platform.accounts.store.organizationBySlug(t.org))!.id,
          'oper@example.com',
        );
        assert.equal(user!.role, 'operator', 'the forged group changed nothing');
      });

      it('follows the provider’s key rotation, and refuses a token signed with the key it retired', async () => {
        await idp.rotateKey();
        const fresh = await ssoSignIn('u-oper');
        assert.equal(fresh.status, 200, `a token under the new key is accepted: ${fresh.text}`);
        const retired = idp.retiredKeys.at(-1)!;
        const res = await forged((tok) => idp.sign(claimsOf(tok), retired));
        await refusedWith(res, 401, 'sso.id_token_invalid', /no applicable keys found/);
      });
    });

    it('deprovisioning: removed at the provider, the operator is out within the session bound and cannot come back', async () => {
      await configure({ maxSessionMinutes: 5 });
      idp.addUser({ sub: 'u-leaver', email: 'leaver@example.com', groups: ['bulwark-operators'] });
      const res = await ssoSignIn('u-leaver');
      assert.equal(res.status, 200);
      idp.users.delete('u-leaver');
      assert.equal((await t.client().get('/api/v1/auth/session', { token: res.body.token })).status, 200, 'still inside the bound');
      assert.ok(Date.parse(res.body.expiresAt) <= t.clock.now() + 5 * MINUTE);
      t.clock.advance(5 * MINUTE + 1000);
      assert.equal((await t.client().get('/api/v1/auth/session', { token: res.body.token })).status, 401, 'the bound ended the session');
      await refusedWith(await ssoSignIn('u-leaver'), 401, 'sso.provider_refused', /access_denied/);
      await configure({});
    });

    it('deprovisioning: removed from the mapped groups, the operator is disabled with their sessions', async () => {
      const user = idp.addUser({ sub: 'u-moved', email: 'moved@example.com', groups: ['bulwark-operators'] });
      const res = await ssoSignIn('u-moved');
      assert.equal(res.status, 200);
      user.groups = ['marketing'];
      await refusedWith(await ssoSignIn('u-moved'), 403, 'sso.no_role');
      assert.equal((await t.client().get('/api/v1/auth/session', { token: res.body.token })).status, 401);
      const row = await t.platform.accounts.store.userById(res.body.user.id);
      assert.equal(row!.status, 'disabled');
    });

    it('SSO only: passwords refused for operators, the break-glass owner kept and audited', async () => {
      const op = await createOperator(t, 'pw-operator@example.com', 'operator');
      await configure({ ssoOnly: true, breakGlassUserId: owner.id });
      const refused = await t.client().post('/api/v1/auth/login', { organization: t.org, email: op.email, password: op.password });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.error.code, 'auth.sso_required');
      const wrong = await t
        .client()
        .post('/api/v1/auth/login', { organization: t.org, email: op.email, password: 'not the password 12345' });
      assert.equal(wrong.body.error.code, 'auth.invalid_credentials', 'a wrong password learns nothing of the rule');
      const denied = await t.platform.audit.query({ action: 'auth.login', targetId: op.id });
      assert.ok(denied.entries.some((e) => e.outcome === 'denied' && (e.details as { reason?: string }).reason === 'sso_only'));

      const glass = await t.client().post('/api/v1/auth/login', { organization: t.org, email: owner.email, password: owner.password });
      assert.equal(glass.status, 200, glass.text);
      const audited = await t.platform.audit.query({ action: 'auth.break_glass', targetId: owner.id });
      assert.equal(audited.entries.length, 1);
      assert.equal((await ssoSignIn('u-oper')).status, 200, 'SSO still works');
      await configure({ ssoOnly: false, breakGlassUserId: null });
    });

    it('reports every operator’s factors, last sign-in and MFA standing', async () => {
      const res = await t.client().get('/api/v1/users/security-report', { token: ownerToken });
      assert.equal(res.status, 200, res.text);
      const by = (email: string) => res.body.operators.find((o: { email: string }) => o.email === email);
      assert.deepEqual(by(owner.email).factors, { password: true, totp: true, passkey: false, sso: false });
      assert.equal(by(owner.email).meetsMfaPolicy, true);
      assert.deepEqual(by('oper@example.com').factors, { password: false, totp: false, passkey: false, sso: true });
      assert.equal(by('oper@example.com').mfaRequired, false);
      assert.ok(by('oper@example.com').lastSignInAt);
      assert.equal(by('admin-mfa@example.com').meetsMfaPolicy, true, 'MFA asserted by the provider');
      assert.equal(by('pw-operator@example.com').lastSignInAt, null);
    });

    it('keeps the client secret sealed: never in the API, rotated with the master key', async () => {
      const res = await t.client().get('/api/v1/org/sso', { token: ownerToken });
      assert.equal(res.status, 200);
      assert.equal(res.body.clientSecretSet, true);
      assert.ok(!res.text.includes(idp.clientSecret));
      const row = await t.platform.db.selectFrom('sso_configs').select('client_secret').executeTakeFirstOrThrow();
      assert.ok(!row.client_secret.includes(idp.clientSecret));
    });

    it('refuses configuration without a fresh step-up, and to an operator', async () => {
      t.clock.advance((t.platform.accounts.sessions.stepUpMinutes + 1) * MINUTE);
      const stale = await t.client().put('/api/v1/org/sso', { issuer: idp.issuer, clientId: 'x' }, { token: ownerToken });
      assert.equal(stale.status, 403, stale.text);
      assert.equal(stale.body.error.code, 'auth.step_up_required');
      const oper = await ssoSignIn('u-oper');
      const forbidden = await t.client().put('/api/v1/org/sso', { issuer: idp.issuer, clientId: 'x' }, { token: oper.body.token });
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.error.code, 'auth.forbidden');
    });

    it('master-key rotation re-wraps the sealed client secret, and sign-in still works', async () => {
      const before = await t.platform.db.selectFrom('sso_configs').select('client_secret').executeTakeFirstOrThrow();
      await rotateMasterKey({ dataDir: t.config.dataDir, db: t.platform.db, box: t.platform.box, audit: t.platform.audit, env: {} });
      const after = await t.platform.db.selectFrom('sso_configs').select('client_secret').executeTakeFirstOrThrow();
      assert.notEqual(sealedKeyId(after.client_secret), sealedKeyId(before.client_secret));
      assert.equal((await ssoSignIn('u-oper')).status, 200);
    });

    // Last: it moves the clock by days, past any token the provider issues in real time.
    it('bounds an SSO operator’s API keys: they stop once the last provider sign-in is older than apiKeyReauthDays', async () => {
      const signedIn = await ssoSignIn('u-oper');
      const created = await t
        .client()
        .post('/api/v1/me/api-keys', { name: 'ci', scopes: ['devices:read'], expiresInDays: 90 }, { token: signedIn.body.token });
      assert.equal(created.status, 201, created.text);
      const key = created.body.secret;
      assert.equal((await t.client().get('/api/v1/devices', { token: key })).status, 200);
      t.clock.advance(6 * DAY);
      assert.equal((await t.client().get('/api/v1/devices', { token: key })).status, 200, 'within 7 days of the last sign-in');
      t.clock.advance(DAY + MINUTE);
      const refused = await t.client().get('/api/v1/devices', { token: key });
      assert.equal(refused.status, 401, 'removed at the provider, the operator cannot renew the bound');
    });
  });
}
