import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { HOUR, MINUTE } from '../clock.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, STRONG_PASSWORD, totp, type TestPlatform } from '../testing/server.js';
import { mailsDuring, tokenIn } from '../testing/mail.js';
import { RESET_MAIL_COOLDOWN_MS, RESET_MAILS_PER_HOUR } from './recovery.js';
import { cliActor } from './roles.js';

const NEW_PASSWORD = 'violet submarine orchestra 42';

/** An operator (no MFA required for the role) created by the platform admin, with a known or a one-time password. */
async function createOperator(t: TestPlatform, email: string, oneTimePassword = false) {
  const org = await t.platform.accounts.store.organizationBySlug(t.org);
  return t.platform.accounts.service.createOperator(cliActor(org!.id, 'test'), {
    email,
    name: 'Ops Person',
    role: 'operator',
    ...(oneTimePassword ? {} : { password: STRONG_PASSWORD }),
  });
}

function login(t: TestPlatform, email: string, password: string) {
  return t.client().post('/api/v1/auth/login', { organization: t.org, email, password });
}

/** Asks for a reset of `email` and returns the token from the mail. */
async function requestReset(t: TestPlatform, email: string): Promise<string> {
  const mails = await mailsDuring(t, () => t.client().post('/api/v1/auth/password-reset/request', { organization: t.org, email }));
  const reset = mails.filter((m) => m.kind === 'password_reset' && m.to === email);
  assert.equal(reset.length, 1);
  return tokenIn(reset[0]!);
}

function completeReset(t: TestPlatform, token: string, newPassword = NEW_PASSWORD) {
  return t.client().post('/api/v1/auth/password-reset/complete', { token, newPassword });
}

for (const engine of ENGINES) {
  describe(`password reset [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { lockoutThreshold: 3, loginRateLimitPerMinute: 1000 } });
    });
    after(() => t?.close());

    it('answers for an unknown account byte for byte as for a known one, and mails only the known one (once: the cooldown)', async () => {
      await createOperator(t, 'known@example.com');
      const client = t.client();
      const answers: { status: number; text: string }[] = [];
      const mails = await mailsDuring(t, async () => {
        for (const body of [
          { organization: t.org, email: 'known@example.com' },
          { organization: t.org, email: 'nobody@example.com' },
          { organization: 'no-such-org', email: 'known@example.com' },
          { organization: t.org, email: 'KNOWN@example.com ' },
        ]) {
          const res = await client.post('/api/v1/auth/password-reset/request', body);
          answers.push({ status: res.status, text: res.text });
        }
      });
      assert.equal(answers[0]!.status, 202);
      for (const answer of answers) assert.deepEqual(answer, answers[0]);
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [['known@example.com', 'password_reset']],
      );
      assert.ok(mails[0]!.text.includes(`${t.server.url}/reset-password#token=${tokenIn(mails[0]!)}`), mails[0]!.text);
    });

    it('builds the link from the server address, not from a forged Host header', async () => {
      await createOperator(t, 'poisoned@example.com');
      const body = JSON.stringify({ organization: t.org, email: 'poisoned@example.com' });
      const headers = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'content-type': 'application/json' };
      const mails = await mailsDuring(t, async () => {
        // TLS to the real name, then a forged Host header inside: what a poisoning attacker sends.
        const status = await new Promise<number>((resolve, reject) => {
          const req = https.request(
            {
              host: '127.0.0.1',
              port: t.server.port,
              servername: 'localhost',
              ca: t.ca,
              method: 'POST',
              path: '/api/v1/auth/password-reset/request',
              headers,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        assert.equal(status, 202);
      });
      assert.equal(mails.length, 1);
      assert.doesNotMatch(mails[0]!.text, /evil/);
      assert.ok(mails[0]!.text.includes(`${t.server.url}/reset-password#token=`));
    });

    it('lets an unverified consumer sign in after a reset, since the link proved the address', async () => {
      const client = t.client();
      assert.equal(
        (
          await client.post('/api/v1/auth/signup', {
            organization: t.org,
            email: 'unverified@example.com',
            password: STRONG_PASSWORD,
            name: 'Una',
          })
        ).status,
        202,
      );
      assert.equal((await login(t, 'unverified@example.com', STRONG_PASSWORD)).body.error.code, 'auth.email_not_verified');
      const token = await requestReset(t, 'unverified@example.com');
      assert.equal((await completeReset(t, token)).status, 200);
      const res = await login(t, 'unverified@example.com', NEW_PASSWORD);
      assert.equal(res.body.status, 'ok');
      assert.equal(res.body.user.emailVerified, true);
    });

    it('sets a new password with the emailed token, signs the account out everywhere, revokes its API keys, and audits it', async () => {
      const { user } = await createOperator(t, 'reset-me@example.com');
      const first = await login(t, user.email, STRONG_PASSWORD);
      const second = await login(t, user.email, STRONG_PASSWORD);
      assert.equal(first.body.status, 'ok');
      await t.client().post('/api/v1/auth/step-up', { password: STRONG_PASSWORD }, { token: first.body.token });
      const session = await t.platform.accounts.authenticator.authenticate(first.body.token, '127.0.0.1', 'bearer');
      const { secret } = await t.platform.accounts.apiKeys.create(session!.actor, {
        name: 'planted',
        scopes: ['org:read'],
        expiresInDays: 30,
      });
      assert.equal((await t.client().get('/api/v1/org', { token: secret })).status, 200, 'the key works before the reset');
      const token = await requestReset(t, user.email);

      const mails = await mailsDuring(t, async () => assert.deepEqual((await completeReset(t, token)).body, { ok: true }));
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [[user.email, 'password_reset_done']],
      );

      for (const old of [first, second]) {
        const res = await t.client().get('/api/v1/auth/session', { token: old.body.token });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'auth.unauthenticated');
      }
      assert.equal((await login(t, user.email, STRONG_PASSWORD)).status, 401);
      assert.equal((await login(t, user.email, NEW_PASSWORD)).body.status, 'ok');
      const { entries } = await t.platform.audit.query({ action: 'user.password_reset', targetId: user.id });
      assert.equal(entries.length, 1);
      assert.deepEqual(entries[0]!.details, { sessionsRevoked: 2, apiKeysRevoked: 1 });
      assert.equal((await t.client().get('/api/v1/org', { token: secret })).status, 401, 'a key made before the reset is dead');
      assert.equal((await t.platform.audit.verify()).ok, true);
    });

    it('refuses a reset token used twice', async () => {
      const { user } = await createOperator(t, 'twice@example.com');
      const token = await requestReset(t, user.email);
      assert.equal((await completeReset(t, token)).status, 200);
      const again = await completeReset(t, token, 'another quite long passphrase 9');
      assert.equal(again.status, 400);
      assert.equal(again.body.error.code, 'auth.token_invalid');
      assert.equal((await login(t, user.email, NEW_PASSWORD)).body.status, 'ok');
    });

    it('refuses an expired reset token', async () => {
      const { user } = await createOperator(t, 'expired@example.com');
      const token = await requestReset(t, user.email);
      t.clock.advance(t.config.auth.resetTokenMinutes * MINUTE + 1);
      const res = await completeReset(t, token);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
      assert.equal((await login(t, user.email, STRONG_PASSWORD)).body.status, 'ok');
    });

    it('refuses a reset token superseded by a newer one', async () => {
      const { user } = await createOperator(t, 'superseded@example.com');
      const older = await requestReset(t, user.email);
      t.clock.advance(RESET_MAIL_COOLDOWN_MS);
      const newer = await requestReset(t, user.email);
      const res = await completeReset(t, older);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
      assert.equal((await completeReset(t, newer)).status, 200);
    });

    it('refuses a reset token once the password was changed another way', async () => {
      const { user } = await createOperator(t, 'changed@example.com');
      const token = await requestReset(t, user.email);
      const session = await login(t, user.email, STRONG_PASSWORD);
      const changed = await t
        .client()
        .post(
          '/api/v1/me/password',
          { currentPassword: STRONG_PASSWORD, newPassword: 'a different long passphrase 3' },
          { token: session.body.token },
        );
      assert.equal(changed.status, 200);
      const res = await completeReset(t, token);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
    });

    it('refuses a short or breached password with auth.password_rejected and leaves the link usable', async () => {
      const { user } = await createOperator(t, 'weak@example.com');
      const token = await requestReset(t, user.email);
      const short = await completeReset(t, token, 'short');
      assert.equal(short.status, 400);
      assert.equal(short.body.error.code, 'auth.password_rejected');
      assert.equal(short.body.error.details.reason, 'too_short');
      const breached = await completeReset(t, token, 'qwerty123456');
      assert.equal(breached.status, 400);
      assert.equal(breached.body.error.code, 'auth.password_rejected');
      assert.equal(breached.body.error.details.reason, 'breached');
      assert.equal((await completeReset(t, token)).status, 200);
    });

    it('refuses a made-up token and sends nothing for a disabled account', async () => {
      const forged = await completeReset(t, `bwt_${'A'.repeat(43)}`);
      assert.equal(forged.status, 400);
      assert.equal(forged.body.error.code, 'auth.token_invalid');
      const { user } = await createOperator(t, 'disabled@example.com');
      await t.platform.accounts.store.updateUser(user.id, { status: 'disabled' });
      const mails = await mailsDuring(t, () =>
        t.client().post('/api/v1/auth/password-reset/request', { organization: t.org, email: user.email }),
      );
      assert.deepEqual(mails, []);
    });

    it('lifts a lockout and a forced password change', async () => {
      const { user } = await createOperator(t, 'locked@example.com', true);
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) assert.equal((await login(t, user.email, 'wrong wrong wrong')).status, 401);
      const token = await requestReset(t, user.email);
      assert.equal((await completeReset(t, token)).status, 200);
      const res = await login(t, user.email, NEW_PASSWORD);
      assert.equal(res.body.status, 'ok');
      assert.equal(res.body.user.mustChangePassword, false);
    });

    it('keeps the second factor: signing in after a reset still asks for the code', async () => {
      const owner = await ownerSession(t);
      const token = await requestReset(t, t.owner.email);
      assert.equal((await completeReset(t, token)).status, 200);
      assert.equal((await t.client().get('/api/v1/auth/session', { token: owner.token })).status, 401);
      const res = await login(t, t.owner.email, NEW_PASSWORD);
      assert.equal(res.body.status, 'mfa_required');
      const full = await t.client().post('/api/v1/auth/mfa', { code: await totp(owner.secret, t.clock) }, { token: res.body.token });
      assert.equal(full.body.status, 'ok');
    });
  });

  describe(`password reset mail cooldown [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    const PER_ADDRESS = 15;
    before(async () => {
      // Behind a proxy the client address comes from X-Forwarded-For: the flood below uses 8 of them.
      t = await startTestPlatform(engine, { http: { trustProxy: true }, auth: { loginRateLimitPerMinute: PER_ADDRESS } });
    });
    after(() => t?.close());

    /** `count` requests for `email`, spread over 8 source addresses, none past its per-address limit. */
    async function flood(email: string, count: number, round: number): Promise<{ status: number; text: string }[]> {
      const client = t.client();
      const answers = [];
      for (let i = 0; i < count; i++) {
        const headers = { 'x-forwarded-for': `198.51.100.${round * 8 + (i % 8) + 1}` };
        const res = await client.request('POST', '/api/v1/auth/password-reset/request', { body: { organization: t.org, email }, headers });
        answers.push({ status: res.status, text: res.text });
      }
      return answers;
    }

    it('mails an account once however many addresses ask, answers every request alike, and audits only the mail sent', async () => {
      const { user } = await createOperator(t, 'flooded@example.com');
      const unknown = await flood('unknown@example.com', 1, 0);
      let answers: { status: number; text: string }[] = [];
      const mails = await mailsDuring(t, async () => {
        answers = await flood(user.email, 100, 1);
      });
      assert.ok(100 / 8 < PER_ADDRESS, 'no address reaches its own limit');
      assert.equal(answers.length, 100);
      for (const answer of answers) assert.deepEqual(answer, unknown[0], 'sent, suppressed and unknown answer alike');
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [[user.email, 'password_reset']],
      );
      const audited = await t.platform.audit.query({ action: 'user.password_reset_requested', targetId: user.id });
      assert.equal(audited.entries.length, 1, 'suppressed requests write no audit entry');
      const [mail] = mails;
      assert.equal((await completeReset(t, tokenIn(mail!))).status, 200, 'the link of the one mail sent still works');
    });

    it(`lets another mail through after the cooldown, at most ${RESET_MAILS_PER_HOUR} an hour`, async () => {
      const { user } = await createOperator(t, 'patient@example.com');
      const sent: number[] = [];
      for (let round = 0; round < RESET_MAILS_PER_HOUR + 1; round++) {
        sent.push((await mailsDuring(t, () => flood(user.email, 8, round + 2))).length);
        t.clock.advance(RESET_MAIL_COOLDOWN_MS);
      }
      assert.deepEqual(sent, [...Array<number>(RESET_MAILS_PER_HOUR).fill(1), 0], 'the hourly cap holds past the cooldown');
      t.clock.advance(HOUR);
      assert.equal((await mailsDuring(t, () => flood(user.email, 1, 7))).length, 1, 'a new hour, a new mail');
    });
  });

  describe(`password reset rate limit [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 2 } });
    });
    after(() => t?.close());

    it('limits reset requests and completions per address like sign-in', async () => {
      const client = t.client();
      const requests = [];
      for (let i = 0; i < 3; i++)
        requests.push(await client.post('/api/v1/auth/password-reset/request', { organization: t.org, email: `x${i}@example.com` }));
      assert.deepEqual(
        requests.map((r) => r.status),
        [202, 202, 429],
      );
      assert.equal(requests[2]!.body.error.code, 'request.rate_limited');
      const completions = [];
      for (let i = 0; i < 3; i++)
        completions.push((await client.post('/api/v1/auth/password-reset/complete', { token: 'bwt_x', newPassword: NEW_PASSWORD })).status);
      assert.deepEqual(completions, [400, 400, 429]);
    });
  });
}
