import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { MINUTE } from '../clock.js';
import { createOperator, signIn, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { outboxDir, OutboxMailer } from './mailer.js';

const WRONG = 'not the password at all 42';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

for (const engine of ENGINES) {
  describe(`sign-in attacks [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    // The per-source limit has its own test below; here it would cut the brute force short.
    before(async () => ({ t, owner } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const attempt = (user: TestUser, password: string) =>
      t.client().post('/api/v1/auth/login', { organization: user.organization, email: user.email, password });
    const lockMails = (email: string) =>
      new OutboxMailer(outboxDir(t.config.dataDir)).list().filter((m) => m.to === email && m.kind === 'account_locked');

    async function lockOut(user: TestUser): Promise<void> {
      for (let i = 0; i < t.config.auth.lockoutThreshold; i++) assert.equal((await attempt(user, WRONG)).status, 401);
    }

    it('locks the account at the failure threshold; then even the right password gets the same 401', async () => {
      const user = await createOperator(t, 'brute@example.com', 'operator');
      const first = await attempt(user, WRONG);
      assert.equal(first.status, 401);
      assert.equal(first.body.error.code, 'auth.invalid_credentials');
      for (let i = 1; i < t.config.auth.lockoutThreshold - 1; i++) assert.deepEqual((await attempt(user, WRONG)).body, first.body);
      assert.equal((await t.platform.accounts.store.userById(user.id))!.locked_until, null, 'not locked before the threshold');
      assert.equal(lockMails(user.email).length, 0);

      assert.deepEqual((await attempt(user, WRONG)).body, first.body);
      const correct = await attempt(user, user.password);
      assert.equal(correct.status, 401);
      assert.deepEqual(correct.body, first.body);
      const mails = lockMails(user.email);
      assert.equal(mails.length, 1);
      assert.match(mails[0]!.text, new RegExp(`After ${t.config.auth.lockoutThreshold} failed sign-in attempts`));
      const audit = await t.platform.audit.query({ action: 'auth.lockout', targetId: user.id });
      assert.equal(audit.entries.length, 1);
    });

    it('lifts the lock after lockoutMinutes, and not a minute before', async () => {
      const user = await createOperator(t, 'patient@example.com', 'operator');
      await lockOut(user);
      t.clock.advance((t.config.auth.lockoutMinutes - 1) * MINUTE);
      assert.equal((await attempt(user, user.password)).status, 401);
      t.clock.advance(2 * MINUTE);
      const res = await attempt(user, user.password);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'ok');
    });

    it('lets an admin lift the lock with POST /users/:id/unlock', async () => {
      const user = await createOperator(t, 'unlockme@example.com', 'operator');
      await lockOut(user);
      const token = await signIn(t, owner);
      const client = t.client();
      assert.equal((await client.get(`/api/v1/users/${user.id}`, { token })).body.locked, true);
      const unlocked = await client.post(`/api/v1/users/${user.id}/unlock`, undefined, { token });
      assert.equal(unlocked.status, 200, unlocked.text);
      assert.equal(unlocked.body.locked, false);
      assert.equal((await attempt(user, user.password)).body.status, 'ok');
      const audit = await t.platform.audit.query({ action: 'user.unlocked', targetId: user.id });
      assert.equal(audit.entries[0]?.actor.id, owner.id);
    });

    it('counts wrong guesses sent in parallel: a threshold of them at once locks the account', async () => {
      const user = await createOperator(t, 'parallel@example.com', 'operator');
      const answers = await Promise.all(Array.from({ length: t.config.auth.lockoutThreshold }, () => attempt(user, WRONG)));
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 401),
      );
      assert.equal((await attempt(user, user.password)).status, 401, 'the account is locked');
      assert.equal(lockMails(user.email).length, 1);
      const failures = await t.platform.audit.query({ action: 'auth.login', targetId: user.id, outcome: 'failure' });
      assert.equal(failures.entries.length, t.config.auth.lockoutThreshold);
    });

    it('answers an unknown organization or email, a wrong password, a locked or a disabled account identically', async () => {
      const real = await createOperator(t, 'real@example.com', 'operator');
      const locked = await createOperator(t, 'locked@example.com', 'operator');
      await lockOut(locked);
      const disabled = await createOperator(t, 'disabled@example.com', 'operator');
      await t.platform.accounts.store.updateUser(disabled.id, { status: 'disabled' });

      const answers = {
        unknownOrganization: await t
          .client()
          .post('/api/v1/auth/login', { organization: 'no-such-org', email: real.email, password: real.password }),
        unknownEmail: await t
          .client()
          .post('/api/v1/auth/login', { organization: t.org, email: 'nobody@example.com', password: real.password }),
        wrongPassword: await attempt(real, WRONG),
        lockedWithRightPassword: await attempt(locked, locked.password),
        disabledWithRightPassword: await attempt(disabled, disabled.password),
      };
      for (const [what, res] of Object.entries(answers)) {
        assert.equal(res.status, 401, what);
        assert.deepEqual(res.body, answers.wrongPassword.body, what);
        assert.equal(res.headers['set-cookie'], undefined, what);
      }
      assert.deepEqual(answers.wrongPassword.body, {
        error: {
          code: 'auth.invalid_credentials',
          message: 'The organization, email or password is incorrect, or the account is temporarily locked',
        },
      });
    });

    it('takes as long to refuse an unknown email as a wrong password (argon2 work is spent on both)', async () => {
      const user = await createOperator(t, 'timing@example.com', 'operator');
      const client = t.client();
      const time = async (email: string) => {
        const started = performance.now();
        const res = await client.post('/api/v1/auth/login', { organization: t.org, email, password: WRONG });
        assert.equal(res.status, 401);
        return performance.now() - started;
      };
      const unknown: number[] = [];
      const wrong: number[] = [];
      await time('warm-up@example.com');
      for (let i = 0; i < 9; i++) {
        unknown.push(await time(`ghost-${i}@example.com`));
        wrong.push(await time(user.email));
        // Keeps the real account below the lockout threshold, so every try takes the wrong-password path.
        await t.platform.accounts.store.updateUser(user.id, { failed_logins: 0 });
      }
      const ratio = median(unknown) / median(wrong);
      assert.ok(
        ratio > 0.5 && ratio < 2,
        `unknown email ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms`,
      );
    });
  });

  describe(`per-source sign-in rate limit [${engine.engine}]`, { skip: engine.skip }, () => {
    const LIMIT = 5;
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: LIMIT } });
    });
    after(() => t?.close());

    it('answers 429 request.rate_limited past loginRateLimitPerMinute attempts from one address, whatever X-Forwarded-For says', async () => {
      const client = t.client();
      const guess = (headers: Record<string, string> = {}, password = 'guess guess guess guess') =>
        client.post('/api/v1/auth/login', { organization: t.org, email: t.owner.email, password }, { headers });
      for (let i = 0; i < LIMIT; i++) assert.equal((await guess()).status, 401);
      const limited = await guess();
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error.code, 'request.rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      // Neither the right password nor a forged client address gets past the limit.
      assert.equal((await guess({}, t.owner.oneTimePassword)).status, 429);
      assert.equal((await guess({ 'x-forwarded-for': '203.0.113.9' })).status, 429);
    });
  });
}
