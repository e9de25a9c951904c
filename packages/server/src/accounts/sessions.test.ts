import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MINUTE, HOUR } from '../clock.js';
import { cookieSignIn, createOperator, enrolMfa, signIn, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient } from '../testing/http.js';
import { startTestPlatform, STRONG_PASSWORD, totp, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { SESSION_COOKIE } from '../transport/http/auth.js';

const NEW_PASSWORD = 'lantern orchard pebble meadow 31';

for (const engine of ENGINES) {
  describe(`sessions [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    before(async () => ({ t, owner } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const whoami = (token: string) => t.client().get('/api/v1/auth/session', { token });

    /** Creates an operator through the API, as an admin would: a one-time password to change at first sign-in. */
    async function invited(email: string, role: string): Promise<{ id: string; oneTimePassword: string }> {
      const created = await t.client().post('/api/v1/users', { email, name: 'Invited', role }, { token: await signIn(t, owner) });
      assert.equal(created.status, 201, created.text);
      return { id: created.body.user.id, oneTimePassword: created.body.oneTimePassword };
    }

    it('never turns a token the client chose into a session: a planted cookie is replaced at sign-in and stays invalid', async () => {
      const user = await createOperator(t, 'fixation@example.com', 'operator');
      const planted = `bws_${'A'.repeat(43)}`;
      const victim = t.client(true);
      victim.cookies.set(SESSION_COOKIE, planted);
      await cookieSignIn(t, user, victim);
      const issued = victim.cookies.get(SESSION_COOKIE);
      assert.ok(issued && issued !== planted);
      assert.equal((await victim.get('/api/v1/auth/session')).status, 200);

      const attacker = t.client(true);
      attacker.cookies.set(SESSION_COOKIE, planted);
      assert.equal((await attacker.get('/api/v1/auth/session')).status, 401);
      assert.equal((await whoami(planted)).status, 401);
    });

    it('issues a new token at sign-in and at every privilege step; the restricted one stops working', async () => {
      const { oneTimePassword } = await invited('steps@example.com', 'admin');
      const client = t.client();
      const first = await client.post('/api/v1/auth/login', { organization: t.org, email: 'steps@example.com', password: oneTimePassword });
      assert.equal(first.body.status, 'password_change_required');
      assert.equal((await whoami(first.body.token)).body.scope, 'password_change');

      const changed = await client.post(
        '/api/v1/me/password',
        { currentPassword: oneTimePassword, newPassword: STRONG_PASSWORD },
        { token: first.body.token },
      );
      assert.equal(changed.body.status, 'mfa_enrollment_required');
      assert.notEqual(changed.body.token, first.body.token);
      assert.equal((await whoami(first.body.token)).status, 401, 'the password_change session is gone');

      const enrolled = await enrolMfa(t, changed.body.token, client);
      assert.notEqual(enrolled.token, changed.body.token);
      assert.equal((await whoami(changed.body.token)).status, 401, 'the mfa_enrollment session is gone');
      assert.equal((await whoami(enrolled.token)).body.scope, 'full');

      const pending = await client.post('/api/v1/auth/login', {
        organization: t.org,
        email: 'steps@example.com',
        password: STRONG_PASSWORD,
      });
      assert.equal(pending.body.status, 'mfa_required');
      const full = await client.post('/api/v1/auth/mfa', { code: await totp(enrolled.secret, t.clock) }, { token: pending.body.token });
      assert.equal(full.body.status, 'ok');
      assert.notEqual(full.body.token, pending.body.token);
      assert.equal((await whoami(pending.body.token)).status, 401, 'the mfa_pending session is gone');

      const rechanged = await client.post(
        '/api/v1/me/password',
        { currentPassword: STRONG_PASSWORD, newPassword: NEW_PASSWORD },
        { token: full.body.token },
      );
      assert.equal(rechanged.body.status, 'ok');
      assert.notEqual(rechanged.body.token, full.body.token);
      assert.equal((await whoami(full.body.token)).status, 401, 'the session from before the password change is gone');
      assert.equal((await whoami(rechanged.body.token)).body.scope, 'full');
    });

    it('refuses every other route to a session that must change its password', async () => {
      const { oneTimePassword } = await invited('mustchange@example.com', 'operator');
      const client = t.client();
      const login = await client.post('/api/v1/auth/login', {
        organization: t.org,
        email: 'mustchange@example.com',
        password: oneTimePassword,
      });
      const token = login.body.token;
      assert.equal(login.body.status, 'password_change_required');
      const tries = [
        await client.get('/api/v1/org', { token }),
        await client.get('/api/v1/me/sessions', { token }),
        await client.post('/api/v1/auth/step-up', { password: oneTimePassword }, { token }),
        await client.post('/api/v1/me/mfa/totp', undefined, { token }),
        await client.delete(`/api/v1/me/sessions/${login.body.user.id}`, { token }),
      ];
      for (const res of tries) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.password_change_required');
        assert.equal(res.body.error.details.next, 'POST /api/v1/me/password');
      }
      assert.equal((await whoami(token)).status, 200);
    });

    it('refuses a token once its session is signed out', async () => {
      const user = await createOperator(t, 'logout@example.com', 'operator');
      const token = await signIn(t, user);
      const client = t.client();
      assert.equal((await client.post('/api/v1/auth/logout', undefined, { token })).status, 200);
      const reused = await whoami(token);
      assert.equal(reused.status, 401);
      assert.equal(reused.body.error.code, 'auth.unauthenticated');
      assert.equal((await client.post('/api/v1/auth/logout', undefined, { token })).status, 401);
    });

    it('ends a session left idle for idleTimeoutMinutes, while activity keeps it alive', async () => {
      const user = await createOperator(t, 'idle@example.com', 'operator');
      const token = await signIn(t, user);
      const idle = t.config.sessions.idleTimeoutMinutes * MINUTE;
      t.clock.advance(idle - MINUTE);
      assert.equal((await whoami(token)).status, 200);
      t.clock.advance(idle - MINUTE);
      assert.equal((await whoami(token)).status, 200);
      t.clock.advance(idle);
      assert.equal((await whoami(token)).status, 401);
    });

    it('ends a session at absoluteTimeoutHours however active it is', async () => {
      const user = await createOperator(t, 'absolute@example.com', 'operator');
      const token = await signIn(t, user);
      const deadline = t.clock.now() + t.config.sessions.absoluteTimeoutHours * HOUR;
      const step = (t.config.sessions.idleTimeoutMinutes - 1) * MINUTE;
      let requests = 0;
      while (t.clock.now() + step < deadline) {
        t.clock.advance(step);
        assert.equal((await whoami(token)).status, 200);
        requests++;
      }
      assert.ok(requests > 1);
      t.clock.set(deadline);
      assert.equal((await whoami(token)).status, 401);
    });

    it('lists my sessions and revokes one; the revoked token gets 401 and nobody else can revoke mine', async () => {
      const user = await createOperator(t, 'twodevices@example.com', 'operator');
      const laptop = await signIn(t, user);
      const phone = await signIn(t, user);
      const client = t.client();
      const listed = await client.get('/api/v1/me/sessions', { token: laptop, headers: { 'user-agent': 'laptop-browser' } });
      assert.equal(listed.status, 200);
      assert.equal(listed.body.sessions.length, 2);
      const current = listed.body.sessions.filter((s: { current: boolean }) => s.current);
      assert.equal(current.length, 1);
      const phoneSession = listed.body.sessions.find((s: { current: boolean }) => !s.current);
      assert.equal(phoneSession.sourceIp, '127.0.0.1');
      assert.equal(JSON.stringify(listed.body).includes(phone), false, 'tokens are never listed');

      const stranger = await createOperator(t, 'stranger@example.com', 'operator');
      const strangerToken = await signIn(t, stranger);
      const theirs = await client.delete(`/api/v1/me/sessions/${current[0].id}`, { token: strangerToken });
      assert.equal(theirs.status, 404);
      assert.equal((await whoami(laptop)).status, 200);

      assert.equal((await client.delete(`/api/v1/me/sessions/${phoneSession.id}`, { token: laptop })).status, 200);
      assert.equal((await whoami(phone)).status, 401);
      assert.equal((await whoami(laptop)).status, 200);
      assert.equal((await client.get('/api/v1/me/sessions', { token: laptop })).body.sessions.length, 1);
    });

    it('stops the sessions of a user who is disabled, or whose role changes', async () => {
      const user = await createOperator(t, 'leaver@example.com', 'operator');
      const direct = await signIn(t, user);
      // Disabled behind the API's back: the status check alone refuses the live session.
      await t.platform.accounts.store.updateUser(user.id, { status: 'disabled' });
      assert.equal((await whoami(direct)).status, 401);
      await t.platform.accounts.store.updateUser(user.id, { status: 'active' });

      const token = await signIn(t, user);
      const ownerToken = await signIn(t, owner);
      const disabled = await t.client().patch(`/api/v1/users/${user.id}`, { status: 'disabled' }, { token: ownerToken });
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal((await whoami(token)).status, 401);
      assert.equal(
        (await t.client().post('/api/v1/auth/login', { organization: t.org, email: user.email, password: user.password })).status,
        401,
      );
      // Re-enabled later, the old session stays dead: it was revoked, not just refused.
      await t.platform.accounts.store.updateUser(user.id, { status: 'active' });
      assert.equal((await whoami(token)).status, 401);

      const before = await signIn(t, user);
      assert.equal((await t.client().patch(`/api/v1/users/${user.id}`, { role: 'auditor' }, { token: ownerToken })).status, 200);
      assert.equal((await whoami(before)).status, 401);
    });

    // A timeout, because the bug this guards against hung the SQLite server for good.
    it(
      'counts wrong current passwords at a password change toward the lockout, so a stolen session cannot guess the password',
      { timeout: 30_000 },
      async () => {
        const user = await createOperator(t, 'guessed@example.com', 'operator');
        const token = await signIn(t, user);
        const client = t.client();
        for (let i = 0; i < t.config.auth.lockoutThreshold; i++) {
          const res = await client.post(
            '/api/v1/me/password',
            { currentPassword: `guess number ${i} of many`, newPassword: NEW_PASSWORD },
            { token },
          );
          assert.equal(res.status, 401);
        }
        const right = await client.post('/api/v1/me/password', { currentPassword: user.password, newPassword: NEW_PASSWORD }, { token });
        assert.equal(right.status, 401, 'the account is locked: even the right password is refused');
        assert.equal(
          (await t.client().post('/api/v1/auth/login', { organization: t.org, email: user.email, password: user.password })).status,
          401,
        );
        const failures = await t.platform.audit.query({ action: 'user.password_changed', targetId: user.id, outcome: 'failure' });
        assert.equal(failures.entries.length, t.config.auth.lockoutThreshold);
        assert.equal(failures.entries[0]!.details.reason, 'bad_current_password');
        assert.deepEqual(failures.entries[0]!.actor, { type: 'user', id: user.id });
      },
    );

    it('ends my other sessions when I change my password', async () => {
      const user = await createOperator(t, 'rotate@example.com', 'operator');
      const mine = await signIn(t, user);
      const stolen = await signIn(t, user);
      const changed = await t
        .client()
        .post('/api/v1/me/password', { currentPassword: user.password, newPassword: NEW_PASSWORD }, { token: mine });
      assert.equal(changed.status, 200, changed.text);
      assert.equal((await whoami(stolen)).status, 401);
      assert.equal((await whoami(mine)).status, 401);
      assert.equal((await whoami(changed.body.token)).status, 200);
    });
  });

  describe(`cookie sessions and CSRF [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let user: TestUser;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 10_000 } });
      user = await createOperator(t, 'console@example.com', 'operator');
    });
    after(() => t?.close());

    async function cookieLogin(): Promise<{ client: HttpClient; csrf: string; setCookie: string }> {
      const { client, csrfToken, login } = await cookieSignIn(t, user);
      assert.equal(login.body.token, undefined, 'no bearer token in cookie mode');
      const setCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      assert.ok(setCookie);
      return { client, csrf: csrfToken, setCookie };
    }

    it('sets the session cookie __Host- prefixed, HttpOnly, Secure, SameSite=Strict, on / and without a Domain', async () => {
      const { setCookie } = await cookieLogin();
      const attributes = setCookie.split(';').map((a) => a.trim().toLowerCase());
      assert.ok(setCookie.startsWith('__Host-'));
      assert.ok(attributes.includes('httponly'));
      assert.ok(attributes.includes('secure'));
      assert.ok(attributes.includes('samesite=strict'));
      assert.ok(attributes.includes('path=/'));
      assert.equal(attributes.filter((a) => a.startsWith('domain=')).length, 0);
    });

    it("refuses state-changing requests without the CSRF token, with a wrong one or with another session's", async () => {
      const { client, csrf } = await cookieLogin();
      const other = await cookieLogin();
      assert.notEqual(other.csrf, csrf);
      const stepUp = (headers: Record<string, string>) => client.post('/api/v1/auth/step-up', { password: user.password }, { headers });

      const forged: Array<Record<string, string>> = [
        {},
        { 'x-csrf-token': 'x'.repeat(csrf.length) },
        { 'x-csrf-token': other.csrf },
        { 'x-csrf-token': '' },
      ];
      for (const headers of forged) {
        const res = await stepUp(headers);
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.csrf_failed');
      }
      const sessions = await client.get('/api/v1/me/sessions');
      assert.equal(sessions.status, 200, 'reads need no CSRF token');
      const otherId = sessions.body.sessions.find((s: { current: boolean }) => !s.current).id;
      assert.equal((await client.delete(`/api/v1/me/sessions/${otherId}`)).status, 403);
      assert.equal((await other.client.get('/api/v1/auth/session')).status, 200, 'the forged revocation did nothing');
      assert.equal((await client.post('/api/v1/auth/logout')).status, 403);
      assert.equal((await client.get('/api/v1/auth/session')).status, 200, 'the forged sign-out did nothing');

      assert.equal((await stepUp({ 'x-csrf-token': csrf })).status, 200);
      assert.equal((await client.get('/api/v1/auth/session')).body.csrfToken, csrf);
      assert.equal((await client.post('/api/v1/auth/logout', undefined, { headers: { 'x-csrf-token': csrf } })).status, 200);
      assert.equal(client.cookies.has(SESSION_COOKIE), false, 'the cookie is cleared');
      assert.equal((await other.client.get('/api/v1/auth/session')).status, 200);
    });

    it('binds a session to its transport: a cookie token is refused as a bearer token, and the reverse', async () => {
      const { client } = await cookieLogin();
      const cookieToken = client.cookies.get(SESSION_COOKIE)!;
      assert.equal((await t.client().get('/api/v1/auth/session', { token: cookieToken })).status, 401);
      const bearer = await signIn(t, user);
      const jar = t.client(true);
      jar.cookies.set(SESSION_COOKIE, bearer);
      assert.equal((await jar.get('/api/v1/auth/session')).status, 401);
    });
  });
}
