import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOperator, insertConsumer, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient } from '../testing/http.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { totp, type TestPlatform } from '../testing/server.js';
import { SoftwareAuthenticator, strangerKey, type Tamper } from '../testing/webauthn.js';

for (const engine of ENGINES) {
  describe(`passkeys [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    let ownerToken: string;
    let client: HttpClient;
    before(async () => ({ t, owner, token: ownerToken, client } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const origin = () => `https://localhost:${t.server.port}`;
    /** Lets the sessions' last step-up grow stale. */
    const staleStepUps = () => t.clock.advance((t.config.sessions.stepUpMinutes * 60 + 1) * 1000);
    const login = (user: TestUser) =>
      client.post('/api/v1/auth/login', { organization: user.organization, email: user.email, password: user.password });

    /** Registers a passkey on a session (a full one gets a step-up first); returns the answer. */
    async function register(token: string, authenticator: SoftwareAuthenticator, user?: TestUser, tamper: Tamper = {}) {
      if (user) await stepUp(t, user, token, client);
      const begun = await client.post('/api/v1/auth/passkeys/registration/options', undefined, { token });
      assert.equal(begun.status, 200, begun.text);
      return client.post(
        '/api/v1/auth/passkeys/registration/verify',
        { response: authenticator.create(begun.body.options, tamper) },
        { token },
      );
    }

    /** A passwordless sign-in in token mode. */
    async function passkeySignIn(authenticator: SoftwareAuthenticator, tamper: Tamper = {}) {
      const begun = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      assert.equal(begun.status, 200, begun.text);
      return client.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(begun.body.options, tamper),
        ceremony: begun.body.ceremony,
      });
    }

    /** An operator holding one registered passkey, signed in fully. */
    async function operatorWithPasskey(email: string, role: 'operator' | 'admin' = 'operator') {
      const user = await createOperator(t, email, role);
      const token = await signIn(t, user, client);
      const authenticator = new SoftwareAuthenticator(origin());
      const registered = await register(token, authenticator, user);
      assert.equal(registered.status, 200, registered.text);
      return { user, token, authenticator, passkeyId: registered.body.passkey.id as string };
    }

    async function reasons(action: string, targetId?: string): Promise<string[]> {
      const { entries } = await t.platform.audit.query({ action, ...(targetId ? { targetId } : {}), limit: 200 });
      return entries.filter((e) => e.outcome !== 'success').map((e) => String((e.details as { reason?: string } | null)?.reason));
    }

    it('registers a passkey after a step-up, and signs in with it alone (no email, no password)', async () => {
      staleStepUps();
      const refused = await client.post('/api/v1/auth/passkeys/registration/options', undefined, { token: ownerToken });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'auth.step_up_required');

      const authenticator = new SoftwareAuthenticator(origin());
      const registered = await register(ownerToken, authenticator, owner);
      assert.equal(registered.status, 200, registered.text);
      assert.equal(registered.body.passkey.name, 'Passkey');
      const listed = await client.get('/api/v1/auth/passkeys', { token: ownerToken });
      assert.deepEqual(
        listed.body.passkeys.map((p: { id: string }) => p.id),
        [registered.body.passkey.id],
      );

      const begun = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      assert.deepEqual(begun.body.options.allowCredentials ?? [], [], 'passwordless options name no credential');
      assert.equal(begun.body.options.userVerification, 'required');
      assert.equal(begun.body.options.rpId, 'localhost');
      const signedIn = await client.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(begun.body.options),
        ceremony: begun.body.ceremony,
      });
      assert.equal(signedIn.status, 200, signedIn.text);
      assert.equal(signedIn.body.status, 'ok');
      assert.equal(signedIn.body.user.email, owner.email);
      assert.equal((await client.get('/api/v1/org', { token: signedIn.body.token })).status, 200);
      const used = await client.get('/api/v1/auth/passkeys', { token: ownerToken });
      assert.notEqual(used.body.passkeys[0].lastUsedAt, null);

      const renamed = await client.patch(`/api/v1/auth/passkeys/${registered.body.passkey.id}`, { name: 'Laptop' }, { token: ownerToken });
      assert.equal(renamed.body.name, 'Laptop');
      const report = await client.get('/api/v1/users/security-report', { token: ownerToken });
      const mine = report.body.operators.find((o: { email: string }) => o.email === owner.email);
      assert.equal(mine.factors.passkey, true, 'the security report shows the passkey');
      for (const action of ['passkey.registered', 'auth.passkey_login', 'passkey.renamed']) {
        const { entries } = await t.platform.audit.query({ action, outcome: 'success' });
        assert.ok(entries.length >= 1, `${action} is audited`);
      }
    });

    it('asks every caller the same: the sign-in options take no account and reveal none', async () => {
      const withEmail = await client.post('/api/v1/auth/passkeys/authentication/options', { email: owner.email });
      assert.equal(withEmail.status, 400, 'the options take no email or organization');
      const a = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      const b = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      assert.deepEqual(Object.keys(a.body.options).sort(), Object.keys(b.body.options).sort());
      assert.notEqual(a.body.options.challenge, b.body.options.challenge);
      assert.notEqual(a.body.ceremony, b.body.ceremony);
    });

    it('refuses forged registrations: another origin, another RP ID, no user verification, another session’s challenge, a replay', async () => {
      const user = await createOperator(t, 'forge-reg@example.com', 'operator');
      const token = await signIn(t, user, client);
      const authenticator = new SoftwareAuthenticator(origin());
      for (const tamper of [{ origin: 'https://evil.example' }, { rpId: 'evil.example' }, { noUserVerification: true }]) {
        const res = await register(token, authenticator, user, tamper);
        assert.equal(res.status, 400, `${JSON.stringify(tamper)}: ${res.text}`);
        assert.equal(res.body.error.code, 'auth.passkey_registration_invalid');
      }

      const other = await signIn(t, user, client);
      await stepUp(t, user, token, client);
      const mine = await client.post('/api/v1/auth/passkeys/registration/options', undefined, { token });
      await stepUp(t, user, other, client);
      const stolen = await client.post(
        '/api/v1/auth/passkeys/registration/verify',
        { response: authenticator.create(mine.body.options) },
        { token: other },
      );
      assert.equal(stolen.status, 400);
      assert.equal(stolen.body.error.code, 'auth.passkey_challenge_invalid');

      const again = await client.post('/api/v1/auth/passkeys/registration/options', undefined, { token });
      const response = authenticator.create(again.body.options);
      assert.equal((await client.post('/api/v1/auth/passkeys/registration/verify', { response }, { token })).status, 200);
      const replayed = await client.post('/api/v1/auth/passkeys/registration/verify', { response }, { token });
      assert.equal(replayed.body.error.code, 'auth.passkey_challenge_invalid');
      assert.equal((await client.get('/api/v1/auth/passkeys', { token })).body.passkeys.length, 1);
      const audited = await reasons('passkey.registered', user.id);
      assert.ok(audited.includes('verification_failed') && audited.includes('challenge_invalid'), audited.join());
    });

    it('refuses forged assertions: another origin or RP ID, no user verification, another key or user handle, a replay, another ceremony, an expired challenge', async () => {
      const { user, authenticator } = await operatorWithPasskey('forge-get@example.com');
      const attacks: Tamper[] = [
        { origin: 'https://evil.example' },
        { rpId: 'evil.example' },
        { noUserVerification: true },
        { signWith: strangerKey() },
        { userHandle: Buffer.from('someone else').toString('base64url') },
      ];
      for (const tamper of attacks) {
        const res = await passkeySignIn(authenticator, tamper);
        assert.equal(res.status, 401, `${Object.keys(tamper)[0]}: ${res.text}`);
        assert.equal(res.body.error.code, 'auth.passkey_invalid');
      }

      const begun = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      const response = authenticator.get(begun.body.options);
      const first = await client.post('/api/v1/auth/passkeys/authentication/verify', { response, ceremony: begun.body.ceremony });
      assert.equal(first.status, 200, first.text);
      const replayed = await client.post('/api/v1/auth/passkeys/authentication/verify', { response, ceremony: begun.body.ceremony });
      assert.equal(replayed.status, 400);
      assert.equal(replayed.body.error.code, 'auth.passkey_challenge_invalid');

      const mine = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      const theirs = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      const crossed = await client.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(mine.body.options),
        ceremony: theirs.body.ceremony,
      });
      assert.equal(crossed.body.error.code, 'auth.passkey_challenge_invalid', 'a challenge answers only the ceremony that asked for it');
      const withoutCeremony = await client.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(theirs.body.options),
      });
      assert.equal(withoutCeremony.body.error.code, 'auth.passkey_challenge_invalid');

      const late = await client.post('/api/v1/auth/passkeys/authentication/options', {});
      t.clock.advance(t.config.passkeys.challengeSeconds * 1000 + 1);
      const expired = await client.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(late.body.options),
        ceremony: late.body.ceremony,
      });
      assert.equal(expired.body.error.code, 'auth.passkey_challenge_invalid');

      const audited = await reasons('auth.passkey_login', user.id);
      for (const reason of ['verification_failed', 'user_handle_mismatch'])
        assert.ok(audited.includes(`passkey_${reason}`), audited.join());
      assert.ok((await reasons('auth.passkey_login')).includes('passkey_challenge_invalid'));
    });

    it('refuses a cloned authenticator (its counter goes back) and audits the evidence', async () => {
      const { user, authenticator } = await operatorWithPasskey('clone@example.com');
      const clone = authenticator.clone();
      assert.equal((await passkeySignIn(authenticator)).status, 200);
      assert.equal((await passkeySignIn(authenticator)).status, 200);
      const cloned = await passkeySignIn(clone);
      assert.equal(cloned.status, 401);
      assert.equal(cloned.body.error.code, 'auth.passkey_invalid');
      const { entries } = await t.platform.audit.query({ action: 'auth.passkey_login', targetId: user.id, outcome: 'failure' });
      const evidence = entries.find((e) => (e.details as { reason?: string }).reason === 'passkey_counter_regression');
      assert.ok(evidence, 'the regression is on record');
      assert.equal((evidence.details as { stored: number }).stored, 2);
      assert.equal((evidence.details as { presented: number }).presented, 1);
      assert.equal((await passkeySignIn(authenticator)).status, 200, 'the genuine authenticator still signs in');
    });

    it('refuses a deleted passkey, and another user’s passkey at the MFA step', async () => {
      const alice = await operatorWithPasskey('alice-pk@example.com');
      const bob = await operatorWithPasskey('bob-pk@example.com');

      const pending = await login(bob.user);
      assert.equal(pending.body.status, 'mfa_required');
      assert.deepEqual(pending.body.mfaFactors, ['passkey']);
      const options = await client.post('/api/v1/auth/passkeys/mfa/options', undefined, { token: pending.body.token });
      assert.equal(options.body.options.allowCredentials.length, 1);
      const [aliceCredential] = alice.authenticator.credentials.keys();
      const foreign = await client.post(
        '/api/v1/auth/passkeys/mfa/verify',
        { response: alice.authenticator.get(options.body.options, { credentialId: aliceCredential }) },
        { token: pending.body.token },
      );
      assert.equal(foreign.status, 401);
      assert.equal(foreign.body.error.code, 'auth.passkey_invalid');
      assert.ok((await reasons('auth.login', bob.user.id)).includes('passkey_credential_of_another_user'));

      staleStepUps();
      const refused = await client.delete(`/api/v1/auth/passkeys/${alice.passkeyId}`, { token: bob.token });
      assert.equal(refused.status, 403, 'removing needs a step-up');
      await stepUp(t, bob.user, bob.token, client);
      assert.equal(
        (await client.delete(`/api/v1/auth/passkeys/${alice.passkeyId}`, { token: bob.token })).status,
        404,
        'not Bob’s to remove',
      );

      await stepUp(t, alice.user, alice.token, client);
      assert.equal((await client.delete(`/api/v1/auth/passkeys/${alice.passkeyId}`, { token: alice.token })).status, 200);
      const gone = await passkeySignIn(alice.authenticator);
      assert.equal(gone.status, 401);
      assert.ok((await reasons('auth.passkey_login')).includes('passkey_unknown_credential'));
      const { entries } = await t.platform.audit.query({ action: 'passkey.removed', targetId: alice.passkeyId });
      assert.equal(entries.length, 1);
    });

    it('completes the MFA step of a password sign-in with a passkey, and steps up with one', async () => {
      const { user, authenticator } = await operatorWithPasskey('second@example.com');
      const pending = await login(user);
      assert.equal(pending.body.status, 'mfa_required');
      const blocked = await client.get('/api/v1/devices', { token: pending.body.token });
      assert.equal(blocked.status, 403);
      const options = await client.post('/api/v1/auth/passkeys/mfa/options', undefined, { token: pending.body.token });
      const done = await client.post(
        '/api/v1/auth/passkeys/mfa/verify',
        { response: authenticator.get(options.body.options) },
        { token: pending.body.token },
      );
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'ok');
      assert.equal((await client.get('/api/v1/auth/session', { token: pending.body.token })).status, 401, 'the pending session is spent');

      const token = done.body.token as string;
      const up = await client.post('/api/v1/auth/passkeys/step-up/options', undefined, { token });
      const upDone = await client.post('/api/v1/auth/passkeys/step-up/verify', { response: authenticator.get(up.body.options) }, { token });
      assert.equal(upDone.status, 200, upDone.text);
      const begun = await client.post('/api/v1/auth/passkeys/registration/options', undefined, { token });
      assert.equal(begun.status, 200, 'the passkey step-up counts');
    });

    it('locks the account after repeated failed assertions; while locked a valid passkey is refused too', async () => {
      const { user, authenticator } = await operatorWithPasskey('lockout-pk@example.com');
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) {
        assert.equal((await passkeySignIn(authenticator, { signWith: strangerKey() })).status, 401);
      }
      const { entries } = await t.platform.audit.query({ action: 'auth.lockout', targetId: user.id });
      assert.equal(entries.length, 1);
      const valid = await passkeySignIn(authenticator);
      assert.equal(valid.status, 401);
      assert.equal(valid.body.error.code, 'auth.passkey_invalid');
      assert.ok((await reasons('auth.passkey_login', user.id)).includes('locked'));
    });

    it('makes the roles a policy names sign in with a passkey: no passkey, register one; a TOTP code is not enough', async () => {
      const admin = await createOperator(t, 'policy-admin@example.com', 'admin');
      await signIn(t, admin, client);
      await stepUp(t, owner, ownerToken, client);
      const set = await client.put('/api/v1/org/passkey-policy', { passkeyRequiredRoles: ['admin'] }, { token: ownerToken });
      assert.equal(set.status, 200, set.text);
      assert.deepEqual(set.body.passkeyRequiredRoles, ['admin']);

      const pending = await login(admin);
      assert.deepEqual(pending.body.mfaFactors, ['totp']);
      const totpDone = await client.post('/api/v1/auth/mfa', { code: await totp(admin.secret!, t.clock) }, { token: pending.body.token });
      t.clock.advance(30_000);
      assert.equal(totpDone.body.status, 'passkey_enrollment_required', totpDone.text);
      const enrolToken = totpDone.body.token as string;
      const blocked = await client.get('/api/v1/users', { token: enrolToken });
      assert.equal(blocked.status, 403);
      assert.equal(blocked.body.error.code, 'auth.passkey_enrollment_required');

      const authenticator = new SoftwareAuthenticator(origin());
      const registered = await register(enrolToken, authenticator);
      assert.equal(registered.status, 200, registered.text);
      assert.equal(registered.body.session.status, 'ok');
      const token = registered.body.session.token as string;

      const next = await login(admin);
      assert.deepEqual(next.body.mfaFactors, ['passkey'], 'only a passkey completes this role’s sign-in');
      const byCode = await client.post('/api/v1/auth/mfa', { code: await totp(admin.secret!, t.clock) }, { token: next.body.token });
      assert.equal(byCode.status, 403);
      assert.equal(byCode.body.error.code, 'auth.passkey_required');

      const up = await client.post('/api/v1/auth/passkeys/step-up/options', undefined, { token });
      await client.post('/api/v1/auth/passkeys/step-up/verify', { response: authenticator.get(up.body.options) }, { token });
      const last = await client.delete(`/api/v1/auth/passkeys/${registered.body.passkey.id}`, { token });
      assert.equal(last.status, 409);
      assert.equal(last.body.error.code, 'auth.passkey_required_by_policy');
      const { entries } = await t.platform.audit.query({ action: 'org.passkey_policy_changed' });
      assert.equal(entries.length, 1);

      await stepUp(t, owner, ownerToken, client);
      await client.put('/api/v1/org/passkey-policy', { passkeyRequiredRoles: [] }, { token: ownerToken });
    });

    it('lets consumers register a passkey and sign in with it', async () => {
      const consumer = await insertConsumer(t, 'pk-consumer@example.com', 'a long consumer passphrase 42');
      const token = await signIn(t, consumer, client);
      const authenticator = new SoftwareAuthenticator(origin());
      assert.equal((await register(token, authenticator, consumer)).status, 200);
      const signedIn = await passkeySignIn(authenticator);
      assert.equal(signedIn.status, 200, signedIn.text);
      assert.equal(signedIn.body.user.kind, 'consumer');
    });

    it('binds a browser’s passwordless ceremony to its cookie (cookie mode)', async () => {
      const { authenticator } = await operatorWithPasskey('cookie-pk@example.com');
      const browser = t.client(true);
      const begun = await browser.post('/api/v1/auth/passkeys/authentication/options', { mode: 'cookie' });
      assert.equal(begun.body.ceremony, undefined, 'the ceremony secret stays in an HttpOnly cookie');
      assert.match(String(begun.headers['set-cookie']), /__Host-bulwark_passkey=.*HttpOnly.*Secure.*SameSite=Strict/i);
      const response = authenticator.get(begun.body.options);
      const elsewhere = await t.client(true).post('/api/v1/auth/passkeys/authentication/verify', { response, mode: 'cookie' });
      assert.equal(elsewhere.body.error.code, 'auth.passkey_challenge_invalid', 'another browser cannot answer this challenge');

      const again = await browser.post('/api/v1/auth/passkeys/authentication/options', { mode: 'cookie' });
      const done = await browser.post('/api/v1/auth/passkeys/authentication/verify', {
        response: authenticator.get(again.body.options),
        mode: 'cookie',
      });
      assert.equal(done.status, 200, done.text);
      assert.ok(done.body.csrfToken);
      assert.ok(browser.cookies.get('__Host-bulwark_session'));
    });
  });
}
