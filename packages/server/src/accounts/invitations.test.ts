import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOUR } from '../clock.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpResponse } from '../testing/http.js';
import { operatorSession, ownerSession, startTestPlatform, STRONG_PASSWORD, totp, type TestPlatform } from '../testing/server.js';
import { mailsDuring, tokenIn } from '../testing/mail.js';
import { cliActor } from './roles.js';

const PASSWORD = 'granite pelican lullaby 314';

for (const engine of ENGINES) {
  describe(`operator invitations [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: { token: string; secret: string };
    let admin: { token: string; userId: string };
    before(async () => {
      t = await startTestPlatform(engine, {
        auth: { loginRateLimitPerMinute: 1000 },
        http: { port: 0, publicUrl: 'https://iot.example.com' },
      });
      owner = await ownerSession(t);
      admin = await operatorSession(t, owner.token, 'admin@example.com', 'admin');
    });
    after(() => t?.close());

    /** Invites as the given session and returns the answer and the token from the mail (if one was sent). */
    async function invite(token: string, body: { email: string; name?: string; role: string }) {
      let answer: HttpResponse | undefined;
      const mails = await mailsDuring(
        t,
        async () => (answer = await t.client().post('/api/v1/invitations', { name: 'Invited Person', ...body }, { token })),
      );
      const mail = mails.find((m) => m.kind === 'invitation' && m.to === body.email);
      return { answer: answer!, mail, inviteToken: mail ? tokenIn(mail) : undefined };
    }

    const accept = (token: string, password = PASSWORD, name?: string) =>
      t.client().post('/api/v1/invitations/accept', { token, password, ...(name ? { name } : {}) });
    const login = (email: string, password = PASSWORD) => t.client().post('/api/v1/auth/login', { organization: t.org, email, password });

    it('invites an operator who accepts with the emailed token and signs in with the invited role', async () => {
      const { answer, mail, inviteToken } = await invite(owner.token, {
        email: 'rel@example.com',
        name: 'Rel Engineer',
        role: 'release_engineer',
      });
      assert.equal(answer.status, 201);
      assert.deepEqual(Object.keys(answer.body.invitation).sort(), ['createdAt', 'email', 'expiresAt', 'id', 'invitedBy', 'name', 'role']);
      assert.equal(answer.body.invitation.role, 'release_engineer');
      assert.ok(mail && inviteToken);
      assert.ok(mail.text.includes(`https://iot.example.com/accept-invitation#token=${inviteToken}`), mail.text);

      const pending = await t.client().get('/api/v1/invitations', { token: owner.token });
      assert.equal(pending.status, 200);
      assert.ok(pending.body.invitations.some((i: { id: string }) => i.id === answer.body.invitation.id));
      assert.doesNotMatch(pending.text, /bwt_/);

      const accepted = await accept(inviteToken);
      assert.equal(accepted.status, 201);
      assert.equal(accepted.body.user.kind, 'operator');
      assert.equal(accepted.body.user.role, 'release_engineer');
      assert.equal(accepted.body.user.name, 'Rel Engineer');
      assert.equal(accepted.body.user.emailVerified, true);
      assert.equal(accepted.body.user.mustChangePassword, false);

      const signedIn = await login('rel@example.com');
      assert.equal(signedIn.body.status, 'ok');
      const after = await t.client().get('/api/v1/invitations', { token: owner.token });
      assert.ok(!after.body.invitations.some((i: { id: string }) => i.id === answer.body.invitation.id));
      const { entries } = await t.platform.audit.query({ action: 'user.invitation_accepted', targetId: accepted.body.user.id });
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.details.role, 'release_engineer');
    });

    it('refuses an invitation accepted twice', async () => {
      const { inviteToken } = await invite(owner.token, { email: 'twice@example.com', role: 'operator' });
      assert.equal((await accept(inviteToken!)).status, 201);
      const again = await accept(inviteToken!, 'a second different passphrase 2');
      assert.equal(again.status, 400);
      assert.equal(again.body.error.code, 'auth.token_invalid');
      assert.equal((await login('twice@example.com', 'a second different passphrase 2')).status, 401);
    });

    it('an admin cannot invite an owner, but can invite an admin', async () => {
      const refused = await invite(admin.token, { email: 'would-be-owner@example.com', role: 'owner' });
      assert.equal(refused.answer.status, 403);
      assert.equal(refused.answer.body.error.code, 'auth.forbidden');
      assert.equal(refused.mail, undefined);
      const allowed = await invite(admin.token, { email: 'new-admin@example.com', role: 'admin' });
      assert.equal(allowed.answer.status, 201);
      assert.equal(allowed.answer.body.invitation.invitedBy, admin.userId);
    });

    it('lets only operators with users:manage invite or withdraw, and users:read list', async () => {
      const auditor = await operatorSession(t, owner.token, 'auditor@example.com', 'auditor');
      const refused = await invite(auditor.token, { email: 'by-auditor@example.com', role: 'auditor' });
      assert.equal(refused.answer.status, 403);
      assert.equal(refused.mail, undefined);
      assert.equal((await t.client().get('/api/v1/invitations', { token: auditor.token })).status, 200);
      const { answer } = await invite(owner.token, { email: 'keep@example.com', role: 'operator' });
      assert.equal((await t.client().delete(`/api/v1/invitations/${answer.body.invitation.id}`, { token: auditor.token })).status, 403);
      assert.equal((await t.client().post('/api/v1/invitations', { email: 'anon@example.com', name: 'A', role: 'owner' })).status, 401);
    });

    it('a withdrawn invitation no longer works, and an admin cannot withdraw an owner invitation', async () => {
      const { answer, inviteToken } = await invite(owner.token, { email: 'withdrawn@example.com', role: 'operator' });
      const id = answer.body.invitation.id;
      assert.deepEqual((await t.client().delete(`/api/v1/invitations/${id}`, { token: owner.token })).body, { ok: true });
      const refused = await accept(inviteToken!);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'auth.token_invalid');
      const again = await t.client().delete(`/api/v1/invitations/${id}`, { token: owner.token });
      assert.equal(again.status, 404);

      const ownerInvite = await invite(owner.token, { email: 'co-owner@example.com', role: 'owner' });
      const byAdmin = await t.client().delete(`/api/v1/invitations/${ownerInvite.answer.body.invitation.id}`, { token: admin.token });
      assert.equal(byAdmin.status, 403);
      assert.equal(byAdmin.body.error.code, 'auth.forbidden');
    });

    it('refuses a short or breached password by the operator policy, and keeps the invitation usable', async () => {
      const { inviteToken } = await invite(owner.token, { email: 'weak@example.com', role: 'operator' });
      const short = await accept(inviteToken!, 'elevenchars');
      assert.equal(short.status, 400);
      assert.equal(short.body.error.code, 'auth.password_rejected');
      assert.equal(short.body.error.details.minLength, 12);
      const breached = await accept(inviteToken!, 'qwerty123456');
      assert.equal(breached.status, 400);
      assert.equal(breached.body.error.code, 'auth.password_rejected');
      assert.equal(breached.body.error.details.reason, 'breached');
      assert.equal((await accept(inviteToken!)).status, 201);
    });

    it('refuses to invite an address that has an account, or to accept once it has one', async () => {
      const existing = await invite(owner.token, { email: t.owner.email, role: 'operator' });
      assert.equal(existing.answer.status, 409);
      assert.equal(existing.answer.body.error.code, 'user.exists');
      assert.equal(existing.mail, undefined);

      const { inviteToken } = await invite(owner.token, { email: 'meanwhile@example.com', role: 'operator' });
      const org = await t.platform.accounts.store.organizationBySlug(t.org);
      await t.platform.accounts.service.createOperator(cliActor(org!.id, 'test'), {
        email: 'meanwhile@example.com',
        name: 'Meanwhile',
        role: 'auditor',
        password: STRONG_PASSWORD,
      });
      const res = await accept(inviteToken!);
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'user.exists');
      assert.equal((await login('meanwhile@example.com', STRONG_PASSWORD)).body.user.role, 'auditor');
    });

    it('a newer invitation for the same address replaces the older one', async () => {
      const older = await invite(owner.token, { email: 'reinvited@example.com', role: 'auditor' });
      const newer = await invite(owner.token, { email: 'reinvited@example.com', role: 'operator' });
      const refused = await accept(older.inviteToken!);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'auth.token_invalid');
      const accepted = await accept(newer.inviteToken!, PASSWORD, 'Chosen Name');
      assert.equal(accepted.body.user.role, 'operator');
      assert.equal(accepted.body.user.name, 'Chosen Name');
    });

    it('an invitation stops working when its inviter may no longer grant the role', async () => {
      const inviter = await operatorSession(t, owner.token, 'demoted@example.com', 'admin');
      const { inviteToken } = await invite(inviter.token, { email: 'from-demoted@example.com', role: 'admin' });
      const org = await t.platform.accounts.store.organizationBySlug(t.org);
      await t.platform.accounts.service.updateUser(cliActor(org!.id, 'test'), inviter.userId, { role: 'operator' });
      const res = await accept(inviteToken!);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
      assert.equal((await login('from-demoted@example.com')).status, 401);
    });

    it('refuses an expired invitation', async () => {
      const { answer, inviteToken } = await invite(owner.token, { email: 'late@example.com', role: 'operator' });
      t.clock.advance(t.config.auth.inviteTokenHours * HOUR + 1);
      const res = await accept(inviteToken!);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'auth.token_invalid');
      // Sessions went idle too: sign the owner in again to see the list.
      const first = await login(t.owner.email, STRONG_PASSWORD);
      const full = await t.client().post('/api/v1/auth/mfa', { code: await totp(owner.secret, t.clock) }, { token: first.body.token });
      const pending = await t.client().get('/api/v1/invitations', { token: full.body.token });
      assert.ok(!pending.body.invitations.some((i: { id: string }) => i.id === answer.body.invitation.id));
      assert.equal((await t.platform.audit.verify()).ok, true);
    });
  });

  describe(`invitation acceptance rate limit [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 2 } });
    });
    after(() => t?.close());

    it('limits attempts to accept per address like sign-in', async () => {
      const client = t.client();
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await client.post('/api/v1/invitations/accept', { token: `bwt_guess${i}`, password: PASSWORD })).status);
      assert.deepEqual(statuses, [400, 400, 429]);
    });
  });
}
