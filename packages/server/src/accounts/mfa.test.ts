import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MINUTE } from '../clock.js';
import { createOperator, enrolMfa, signIn, wrongTotp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { totp, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';

for (const engine of ENGINES) {
  describe(`two-factor authentication [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    before(async () => ({ t, owner } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const login = (user: TestUser) =>
      t.client().post('/api/v1/auth/login', { organization: user.organization, email: user.email, password: user.password });
    const mfaStep = (token: string, code: string) => t.client().post('/api/v1/auth/mfa', { code }, { token });

    /** An admin who has enrolled TOTP (their secret is on the returned user). */
    async function enrolledAdmin(email: string): Promise<TestUser> {
      const user = await createOperator(t, email, 'admin');
      await signIn(t, user);
      return user;
    }

    it('makes owners and admins enrol an authenticator before anything else; other roles are not forced', async () => {
      for (const role of ['owner', 'admin'] as const) {
        const user = await createOperator(t, `enrol-${role}@example.com`, role);
        const first = await login(user);
        assert.equal(first.body.status, 'mfa_enrollment_required');
        const token = first.body.token;
        const client = t.client();
        for (const res of [
          await client.get('/api/v1/org', { token }),
          await client.get('/api/v1/users', { token }),
          await client.get('/api/v1/me/sessions', { token }),
          await client.post('/api/v1/auth/step-up', { password: user.password }, { token }),
        ]) {
          assert.equal(res.status, 403, res.text);
          assert.equal(res.body.error.code, 'auth.mfa_enrollment_required');
        }
        const begun = await client.post('/api/v1/me/mfa/totp', undefined, { token });
        assert.match(begun.body.otpauthUri, /^otpauth:\/\/totp\//);
        const wrong = await client.post('/api/v1/me/mfa/totp/confirm', { code: await wrongTotp(begun.body.secret, t) }, { token });
        assert.equal(wrong.status, 401);
        assert.equal(wrong.body.error.code, 'auth.mfa_invalid');
        assert.equal((await client.get('/api/v1/org', { token })).status, 403, 'a wrong confirmation code enrols nothing');

        const confirmed = await client.post('/api/v1/me/mfa/totp/confirm', { code: await totp(begun.body.secret, t.clock) }, { token });
        assert.equal(confirmed.body.recoveryCodes.length, 10);
        assert.equal(confirmed.body.session.status, 'ok');
        assert.equal((await client.get('/api/v1/org', { token: confirmed.body.session.token })).status, 200);
        t.clock.advance(30_000);
      }
      const operator = await createOperator(t, 'enrol-operator@example.com', 'operator');
      assert.equal((await login(operator)).body.status, 'ok');
    });

    it('asks for the code after the password, and the pending session opens nothing else', async () => {
      const admin = await enrolledAdmin('pending@example.com');
      const pending = await login(admin);
      assert.equal(pending.body.status, 'mfa_required');
      const refused = await t.client().get('/api/v1/users', { token: pending.body.token });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'auth.mfa_required');
      const done = await mfaStep(pending.body.token, await totp(admin.secret!, t.clock));
      assert.equal(done.body.status, 'ok');
      assert.equal((await t.client().get('/api/v1/users', { token: done.body.token })).status, 200);
    });

    it('refuses a TOTP code replayed in the same time step, also when both uses race', async () => {
      const admin = await enrolledAdmin('replay@example.com');
      const code = await totp(admin.secret!, t.clock);
      assert.equal((await mfaStep((await login(admin)).body.token, code)).body.status, 'ok');
      const replayed = await mfaStep((await login(admin)).body.token, code);
      assert.equal(replayed.status, 401);
      assert.equal(replayed.body.error.code, 'auth.mfa_invalid');

      t.clock.advance(30_000);
      const fresh = await totp(admin.secret!, t.clock);
      const pendings = await Promise.all([login(admin), login(admin), login(admin)]);
      const raced = await Promise.all(pendings.map((p) => mfaStep(p.body.token, fresh)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [200, 401, 401]);
      t.clock.advance(30_000);
    });

    it('counts wrong codes toward the lockout, and a locked account cannot finish the MFA step', async () => {
      const admin = await enrolledAdmin('guesser@example.com');
      const pending = (await login(admin)).body.token;
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) {
        const res = await mfaStep(pending, await wrongTotp(admin.secret!, t));
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'auth.mfa_invalid');
      }
      const late = await mfaStep(pending, await totp(admin.secret!, t.clock));
      assert.equal(late.status, 401, 'even the right code is refused while locked');
      assert.equal(late.body.error.code, 'auth.invalid_credentials');
      assert.equal((await login(admin)).body.error.code, 'auth.invalid_credentials');
    });

    it('keeps counting wrong codes when the attacker re-enters the password between them', async () => {
      const admin = await enrolledAdmin('persistent@example.com');
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) {
        const pending = await login(admin);
        assert.equal(pending.body.status, 'mfa_required', `attempt ${i}: ${pending.text}`);
        assert.equal((await mfaStep(pending.body.token, await wrongTotp(admin.secret!, t))).status, 401);
      }
      const locked = await login(admin);
      assert.equal(locked.status, 401);
      assert.equal(locked.body.error.code, 'auth.invalid_credentials');
    });

    it('counts wrong step-up codes toward the lockout, so a stolen session cannot guess the second factor', async () => {
      const admin = await enrolledAdmin('stolen-session@example.com');
      const token = await signIn(t, admin);
      const client = t.client();
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) {
        const res = await client.post('/api/v1/auth/step-up', { code: await wrongTotp(admin.secret!, t) }, { token });
        assert.equal(res.status, 401);
      }
      const right = await client.post('/api/v1/auth/step-up', { code: await totp(admin.secret!, t.clock) }, { token });
      assert.equal(right.status, 401, 'the account is locked: even the right code is refused');
      assert.equal(right.body.error.code, 'auth.invalid_credentials');
      assert.equal((await login(admin)).body.error.code, 'auth.invalid_credentials');
      const failures = await t.platform.audit.query({ action: 'auth.step_up', targetId: admin.id, outcome: 'failure' });
      assert.equal(failures.entries.length, t.config.auth.lockoutThreshold);
      t.clock.advance(t.config.auth.lockoutMinutes * MINUTE);
    });

    it('accepts each recovery code once, however it is typed', async () => {
      const user = await createOperator(t, 'recovery@example.com', 'admin');
      const { recoveryCodes } = await enrolMfa(t, (await login(user)).body.token);
      const [first, second] = recoveryCodes as [string, string];
      assert.equal((await mfaStep((await login(user)).body.token, first)).body.status, 'ok');
      const reused = await mfaStep((await login(user)).body.token, first);
      assert.equal(reused.status, 401);
      assert.equal(reused.body.error.code, 'auth.mfa_invalid');
      assert.equal((await mfaStep((await login(user)).body.token, ` ${second.replace('-', '').toUpperCase()} `)).body.status, 'ok');
      assert.equal((await mfaStep((await login(user)).body.token, second)).status, 401);
    });

    it("requires a fresh step-up to reset another user's MFA; it is given by POST /auth/step-up and lapses after stepUpMinutes", async () => {
      const target = await enrolledAdmin('lostphone@example.com');
      const targetToken = await signIn(t, target);
      const token = await signIn(t, owner);
      const client = t.client();
      const reset = (id: string) => client.post(`/api/v1/users/${id}/mfa-reset`, undefined, { token });
      const stepUpWindow = t.config.sessions.stepUpMinutes * MINUTE;

      t.clock.advance(stepUpWindow);
      const stale = await reset(target.id);
      assert.equal(stale.status, 403);
      assert.equal(stale.body.error.code, 'auth.step_up_required');
      assert.equal(stale.body.error.details.next, '/api/v1/auth/step-up');

      const wrong = await client.post('/api/v1/auth/step-up', { code: await wrongTotp(owner.secret!, t) }, { token });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error.code, 'auth.mfa_invalid');
      const passwordOnly = await client.post('/api/v1/auth/step-up', { password: owner.password }, { token });
      assert.equal(passwordOnly.status, 400, 'a user with MFA must prove the second factor');
      assert.equal((await reset(target.id)).status, 403);

      const code = await totp(owner.secret!, t.clock);
      assert.equal((await client.post('/api/v1/auth/step-up', { code }, { token })).status, 200);
      assert.equal((await client.post('/api/v1/auth/step-up', { code }, { token })).status, 401, 'the step-up code cannot be replayed');
      const done = await reset(target.id);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.mfaEnabled, false);
      assert.equal((await t.client().get('/api/v1/auth/session', { token: targetToken })).status, 401, 'the reset ends their sessions');
      assert.equal((await login(target)).body.status, 'mfa_enrollment_required');

      const other = await enrolledAdmin('lostphone2@example.com');
      t.clock.advance(stepUpWindow);
      assert.equal((await reset(other.id)).body.error.code, 'auth.step_up_required');
      t.clock.advance(30_000);
    });

    it('requires a fresh step-up to regenerate recovery codes or turn MFA off, and keeps it on where the role needs it', async () => {
      const operator = await createOperator(t, 'voluntary@example.com', 'operator');
      const enrolled = await enrolMfa(t, await signIn(t, operator));
      operator.secret = enrolled.secret;
      const token = await signIn(t, operator);
      const client = t.client();
      t.clock.advance(t.config.sessions.stepUpMinutes * MINUTE);
      assert.equal((await client.post('/api/v1/me/mfa/recovery-codes', undefined, { token })).body.error.code, 'auth.step_up_required');
      assert.equal((await client.delete('/api/v1/me/mfa', { token })).body.error.code, 'auth.step_up_required');
      assert.equal((await client.post('/api/v1/auth/step-up', { code: enrolled.recoveryCodes[0] }, { token })).status, 200);
      const regenerated = await client.post('/api/v1/me/mfa/recovery-codes', undefined, { token });
      assert.equal(regenerated.body.recoveryCodes.length, 10);
      assert.equal((await mfaStep((await login(operator)).body.token, enrolled.recoveryCodes[1]!)).status, 401, 'the old codes are void');
      assert.equal((await client.delete('/api/v1/me/mfa', { token })).status, 200);
      assert.equal((await login(operator)).body.status, 'ok');

      const admin = await enrolledAdmin('keepson@example.com');
      const adminToken = await signIn(t, admin);
      const refused = await client.delete('/api/v1/me/mfa', { token: adminToken });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'auth.mfa_required_by_policy');
    });
  });
}
