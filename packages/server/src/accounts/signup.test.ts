import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOUR } from '../clock.js';
import { ENGINES } from '../testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { mailsDuring, tokenIn } from '../testing/mail.js';

const PASSWORD = 'lantern meadow quietly 58';

for (const engine of ENGINES) {
  describe(`consumer sign-up and email verification [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 1000 } });
    });
    after(() => t?.close());

    const signup = (body: Record<string, unknown>) =>
      t.client().post('/api/v1/auth/signup', { organization: t.org, password: PASSWORD, name: 'Casey Consumer', ...body });
    const login = (email: string, password = PASSWORD) => t.client().post('/api/v1/auth/login', { organization: t.org, email, password });
    const verify = (token: string) => t.client().post('/api/v1/auth/verify-email', { token });
    const resend = (email: string, organization = t.org) => t.client().post('/api/v1/auth/verify-email/resend', { organization, email });

    /** Signs up and returns the answer and the verification token from the mail. */
    async function signupWithToken(email: string) {
      let answer: Awaited<ReturnType<typeof signup>> | undefined;
      const mails = await mailsDuring(t, async () => (answer = await signup({ email })));
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [[email, 'email_verify']],
      );
      return { answer: answer!, token: tokenIn(mails[0]!), mail: mails[0]! };
    }

    it('creates a consumer who can sign in only after following the verification link', async () => {
      const { answer, token, mail } = await signupWithToken('casey@example.com');
      assert.equal(answer.status, 202);
      assert.equal(answer.body.status, 'accepted');
      assert.ok(mail.text.includes(`${t.server.url}/verify-email#token=${token}`), mail.text);

      const early = await login('casey@example.com');
      assert.equal(early.status, 403);
      assert.equal(early.body.error.code, 'auth.email_not_verified');

      assert.deepEqual((await verify(token)).body, { ok: true });
      const signedIn = await login('casey@example.com');
      assert.equal(signedIn.body.status, 'ok');
      assert.equal(signedIn.body.user.kind, 'consumer');
      assert.equal(signedIn.body.user.role, null);
      assert.equal(signedIn.body.user.emailVerified, true);
      const { entries } = await t.platform.audit.query({ action: 'user.email_verified', targetId: signedIn.body.user.id });
      assert.equal(entries.length, 1);
    });

    it('answers a sign-up with a taken address exactly as a new one, and mails its owner a notice instead of a link', async () => {
      const fresh = await signupWithToken('taken@example.com');
      let again: Awaited<ReturnType<typeof signup>> | undefined;
      const mails = await mailsDuring(
        t,
        async () => (again = await signup({ email: 'Taken@Example.com', password: 'an attacker chosen passphrase 1' })),
      );
      assert.equal(again!.status, fresh.answer.status);
      assert.equal(again!.text, fresh.answer.text);
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [['taken@example.com', 'signup_existing_account']],
      );
      assert.doesNotMatch(mails[0]!.text, /bwt_/);
      assert.match(mails[0]!.text, /reset/i);
      // The account is unchanged: still unverified, still the first password.
      assert.equal((await verify(fresh.token)).status, 200);
      assert.equal((await login('taken@example.com', 'an attacker chosen passphrase 1')).status, 401);
      assert.equal((await login('taken@example.com')).body.status, 'ok');
    });

    it("answers a sign-up with an operator's address or an unknown organization exactly the same", async () => {
      const reference = await signupWithToken('reference@example.com');
      let operator: Awaited<ReturnType<typeof signup>> | undefined;
      let unknownOrg: Awaited<ReturnType<typeof signup>> | undefined;
      const mails = await mailsDuring(t, async () => {
        operator = await signup({ email: t.owner.email });
        unknownOrg = await signup({ organization: 'no-such-org', email: 'someone@example.com' });
      });
      for (const res of [operator!, unknownOrg!]) {
        assert.equal(res.status, reference.answer.status);
        assert.equal(res.text, reference.answer.text);
      }
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [[t.owner.email, 'signup_existing_account']],
      );
      const owner = await t.platform.accounts.store.userByEmail(
        (await t.platform.accounts.store.organizationBySlug(t.org))!.id,
        t.owner.email,
      );
      assert.equal(owner!.kind, 'operator');
    });

    it('refuses a verification token used twice, or made up', async () => {
      const { token } = await signupWithToken('twice@example.com');
      assert.equal((await verify(token)).status, 200);
      for (const attempt of [token, `bwt_${'B'.repeat(43)}`]) {
        const res = await verify(attempt);
        assert.equal(res.status, 400);
        assert.equal(res.body.error.code, 'auth.token_invalid');
      }
    });

    it('refuses an expired verification token, and a new link works', async () => {
      const { token } = await signupWithToken('late@example.com');
      t.clock.advance(t.config.auth.verifyTokenHours * HOUR + 1);
      const res = await verify(token);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
      const mails = await mailsDuring(t, () => resend('late@example.com'));
      assert.equal((await verify(tokenIn(mails[0]!))).status, 200);
      assert.equal((await login('late@example.com')).body.status, 'ok');
    });

    it('a new verification link voids the earlier one', async () => {
      const { token: older } = await signupWithToken('resend@example.com');
      const mails = await mailsDuring(t, () => resend('resend@example.com'));
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [['resend@example.com', 'email_verify']],
      );
      const refused = await verify(older);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'auth.token_invalid');
      assert.equal((await verify(tokenIn(mails[0]!))).status, 200);
    });

    it('answers a request for a new link the same for unverified, verified, unknown and operator addresses, mailing only the unverified', async () => {
      await signupWithToken('pending@example.com');
      const { token } = await signupWithToken('done@example.com');
      await verify(token);
      const answers: { status: number; text: string }[] = [];
      const mails = await mailsDuring(t, async () => {
        for (const [email, org] of [
          ['pending@example.com', t.org],
          ['done@example.com', t.org],
          ['nobody@example.com', t.org],
          [t.owner.email, t.org],
          ['pending@example.com', 'no-such-org'],
        ] as const) {
          const res = await resend(email, org);
          answers.push({ status: res.status, text: res.text });
        }
      });
      assert.equal(answers[0]!.status, 202);
      for (const answer of answers) assert.deepEqual(answer, answers[0]);
      assert.deepEqual(
        mails.map((m) => [m.to, m.kind]),
        [['pending@example.com', 'email_verify']],
      );
    });

    it('refuses a short or breached password with auth.password_rejected, and mails nothing', async () => {
      const mails = await mailsDuring(t, async () => {
        const short = await signup({ email: 'weak@example.com', password: 'abc123' });
        assert.equal(short.status, 400);
        assert.equal(short.body.error.code, 'auth.password_rejected');
        assert.equal(short.body.error.details.reason, 'too_short');
        const breached = await signup({ email: 'weak@example.com', password: 'password' });
        assert.equal(breached.status, 400);
        assert.equal(breached.body.error.code, 'auth.password_rejected');
        assert.equal(breached.body.error.details.reason, 'breached');
        const named = await signup({ email: 'weak@example.com', name: 'Zebulon Quartermaine', password: 'zebulonquartermaine' });
        assert.equal(named.body.error.code, 'auth.password_rejected');
      });
      assert.deepEqual(mails, []);
      assert.equal(
        await t.platform.accounts.store.userByEmail((await t.platform.accounts.store.organizationBySlug(t.org))!.id, 'weak@example.com'),
        undefined,
      );
    });

    it('refuses an address that is not one, and unknown fields', async () => {
      const bad = await signup({ email: 'not-an-address' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'request.invalid');
      const extra = await signup({ email: 'extra@example.com', role: 'owner' });
      assert.equal(extra.status, 400);
      assert.match(extra.body.error.message, /unknown field "role"/);
    });

    it('creates one account when the same address signs up twice at once', async () => {
      const answers = await Promise.all([
        signup({ email: 'race@example.com' }),
        signup({ email: 'race@example.com' }),
        signup({ email: 'race@example.com' }),
      ]);
      for (const answer of answers) assert.deepEqual([answer.status, answer.text], [answers[0]!.status, answers[0]!.text]);
      const org = await t.platform.accounts.store.organizationBySlug(t.org);
      const rows = await t.platform.db
        .selectFrom('users')
        .select('id')
        .where('organization_id', '=', org!.id)
        .where('email', '=', 'race@example.com')
        .execute();
      assert.equal(rows.length, 1);
      assert.equal((await t.platform.audit.verify()).ok, true);
    });
  });

  describe(`sign-up rate limit [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 1 } });
    });
    after(() => t?.close());

    it('limits sign-up, verification and new links per address like sign-in', async () => {
      const client = t.client();
      const calls: [string, Record<string, unknown>][] = [
        ['/api/v1/auth/signup', { organization: t.org, email: 'r@example.com', password: PASSWORD, name: 'R' }],
        ['/api/v1/auth/verify-email', { token: 'bwt_x' }],
        ['/api/v1/auth/verify-email/resend', { organization: t.org, email: 'r@example.com' }],
      ];
      for (const [path, body] of calls) {
        assert.notEqual((await client.post(path, body)).status, 429);
        const limited = await client.post(path, body);
        assert.equal(limited.status, 429, path);
        assert.equal(limited.body.error.code, 'request.rate_limited');
      }
    });
  });
}
