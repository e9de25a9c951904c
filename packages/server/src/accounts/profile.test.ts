import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOperator, insertConsumer, signIn, type TestUser, stepUp as stepUpAs } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient } from '../testing/http.js';
import { operatorSession, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { outboxDir, OutboxMailer, type OutboxMessage } from './mailer.js';

for (const engine of ENGINES) {
  describe(`my account [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let owner: TestUser;
    let ownerToken: string;

    before(async () => ({ t, client, owner, token: ownerToken } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const stepUp = (user: TestUser, token: string) => stepUpAs(t, user, token, client);

    const mails = (to: string, kind: string): OutboxMessage[] =>
      new OutboxMailer(outboxDir(t.config.dataDir)).list().filter((m) => m.to === to && m.kind === kind);

    function tokenIn(mail: OutboxMessage): string {
      const match = /^bwt_[A-Za-z0-9_-]+$/m.exec(mail.text);
      assert.ok(match, `no token in: ${mail.text}`);
      return match[0];
    }

    async function requestEmailChange(user: TestUser, token: string, newEmail: string): Promise<void> {
      await stepUp(user, token);
      const res = await client.post('/api/v1/me/email', { newEmail }, { token });
      assert.equal(res.status, 202, res.text);
    }

    it('reads my account and changes my name, audited', async () => {
      const me = await client.get('/api/v1/me', { token: ownerToken });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, owner.id);
      assert.equal(me.body.email, owner.email);
      const renamed = await client.patch('/api/v1/me', { name: '  Ada Owner  ' }, { token: ownerToken });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.name, 'Ada Owner');
      const sneaky = await client.patch('/api/v1/me', { name: 'x', role: 'owner' }, { token: ownerToken });
      assert.equal(sneaky.status, 400, 'unknown fields such as role are refused');
      const audit = await t.platform.audit.query({ action: 'user.updated', targetId: owner.id });
      assert.equal(audit.entries[0]!.details.name, 'Ada Owner');
    });

    it('changes my email after a step-up: token to the new address, notice to the old, used once', async () => {
      const alice = await createOperator(t, 'alice@example.com', 'auditor');
      const token = await signIn(t, alice, client);
      const stale = await client.post('/api/v1/me/email', { newEmail: 'alice@new.example' }, { token });
      assert.equal(stale.status, 403);
      assert.equal(stale.body.error.code, 'auth.step_up_required');

      await requestEmailChange(alice, token, 'Alice@New.Example');
      const [confirmMail] = mails('alice@new.example', 'email_change');
      assert.ok(confirmMail, 'the new address gets the token');
      const [notice] = mails('alice@example.com', 'email_change_notice');
      assert.ok(notice, 'the old address gets a notice');
      assert.match(notice.text, /alice@new\.example/);
      assert.doesNotMatch(notice.text, /bwt_/, 'the notice carries no token');

      const confirmToken = tokenIn(confirmMail);
      const confirmed = await client.post('/api/v1/me/email/confirm', { token: confirmToken }, { token });
      assert.equal(confirmed.status, 200, confirmed.text);
      assert.equal(confirmed.body.email, 'alice@new.example');
      assert.equal(confirmed.body.emailVerified, true);

      const reused = await client.post('/api/v1/me/email/confirm', { token: confirmToken }, { token });
      assert.equal(reused.status, 400);
      assert.equal(reused.body.error.code, 'auth.token_invalid');

      const oldLogin = await client.post('/api/v1/auth/login', {
        organization: t.org,
        email: 'alice@example.com',
        password: alice.password,
      });
      assert.equal(oldLogin.status, 401);
      const newLogin = await client.post('/api/v1/auth/login', {
        organization: t.org,
        email: 'alice@new.example',
        password: alice.password,
      });
      assert.equal(newLogin.status, 200);
      const audit = await t.platform.audit.query({ action: 'user.email_changed', targetId: alice.id });
      assert.deepEqual(audit.entries[0]!.details, { previousEmail: 'alice@example.com', newEmail: 'alice@new.example' });
    });

    it("links an operator's email change to the console's page and a consumer's to the companion app's", async () => {
      const olga = await createOperator(t, 'olga@example.com', 'operator');
      await requestEmailChange(olga, await signIn(t, olga, client), 'olga@new.example');
      const operatorMail = mails('olga@new.example', 'email_change').at(-1)!;
      const link = (mail: OutboxMessage) => /^https:\/\/\S+#token=bwt_\S+$/m.exec(mail.text)?.[0] ?? '';
      assert.equal(new URL(link(operatorMail)).pathname, '/console/account/email', operatorMail.text);
      assert.equal(new URL(link(operatorMail)).hash, `#token=${tokenIn(operatorMail)}`);

      const chris = await insertConsumer(t, 'chris@example.com', 'consumer password 123');
      await requestEmailChange(chris, await signIn(t, chris, client), 'chris@new.example');
      const consumerMail = mails('chris@new.example', 'email_change').at(-1)!;
      assert.equal(new URL(link(consumerMail)).pathname, '/account/email', consumerMail.text);
    });

    it('keeps an email-change token to the account that asked for it', async () => {
      const bob = await createOperator(t, 'bob@example.com', 'auditor');
      const bobToken = await signIn(t, bob, client);
      const eve = await createOperator(t, 'eve@example.com', 'auditor');
      const eveToken = await signIn(t, eve, client);
      await requestEmailChange(bob, bobToken, 'bob@new.example');
      const token = tokenIn(mails('bob@new.example', 'email_change').at(-1)!);

      const stolen = await client.post('/api/v1/me/email/confirm', { token }, { token: eveToken });
      assert.equal(stolen.status, 400);
      assert.equal(stolen.body.error.code, 'auth.token_invalid');
      assert.equal((await t.platform.accounts.store.userById(eve.id))!.email, 'eve@example.com');
      const mine = await client.post('/api/v1/me/email/confirm', { token }, { token: bobToken });
      assert.equal(mine.status, 200, 'the refused attempt did not spend the token');
    });

    it('refuses to apply an email change to an address another user took meanwhile (409)', async () => {
      const carol = await createOperator(t, 'carol@example.com', 'auditor');
      const token = await signIn(t, carol, client);
      await requestEmailChange(carol, token, 'wanted@example.com');
      const changeToken = tokenIn(mails('wanted@example.com', 'email_change').at(-1)!);
      const taken = await client.post(
        '/api/v1/users',
        { email: 'wanted@example.com', name: 'Quick', role: 'auditor' },
        { token: ownerToken },
      );
      assert.equal(taken.status, 201, taken.text);
      const res = await client.post('/api/v1/me/email/confirm', { token: changeToken }, { token });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'user.exists');
      assert.equal((await t.platform.accounts.store.userById(carol.id))!.email, 'carol@example.com');
    });

    it('answers the same whether or not the new address already has an account', async () => {
      const dave = await createOperator(t, 'dave@example.com', 'auditor');
      const token = await signIn(t, dave, client);
      await requestEmailChange(dave, token, owner.email);
      assert.equal(mails(owner.email, 'email_change').length, 0, 'no token for an address that has an account');
      assert.equal(mails(owner.email, 'email_change_unavailable').length, 1);
      assert.equal(mails('dave@example.com', 'email_change_notice').length, 1);
      const same = await client.post('/api/v1/me/email', { newEmail: 'dave@example.com' }, { token });
      assert.equal(same.status, 400, 'my current address is not a change');
    });

    it('exports my data without password hash, token digests or TOTP secret', async () => {
      await stepUp(owner, ownerToken);
      const created = await client.post(
        '/api/v1/me/api-keys',
        { name: 'exported', scopes: ['audit:read'], expiresInDays: 10 },
        { token: ownerToken },
      );
      assert.equal(created.status, 201, created.text);
      const keySecret: string = created.body.secret;
      const retired = await client.post(
        '/api/v1/me/api-keys',
        { name: 'retired', scopes: ['audit:read'], expiresInDays: 10 },
        { token: ownerToken },
      );
      assert.equal((await client.delete(`/api/v1/me/api-keys/${retired.body.apiKey.id}`, { token: retired.body.secret })).status, 200);

      const res = await client.get('/api/v1/me/export', { token: ownerToken });
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-disposition']), /attachment/);
      const data = res.body;
      assert.equal(data.profile.id, owner.id);
      assert.equal(data.organization.slug, t.org);
      assert.equal(data.mfa.enabled, true);
      assert.equal(data.mfa.recoveryCodesRemaining, 10);
      assert.ok(data.sessions.length >= 1);
      assert.deepEqual(data.apiKeys.map((k: { name: string }) => k.name).includes('exported'), true);
      const actions = new Set(data.auditEntries.map((e: { action: string }) => e.action));
      for (const action of ['auth.login', 'mfa.enabled', 'apikey.created', 'user.updated'])
        assert.ok(actions.has(action), `audit entries include ${action}`);
      const mine = new Set([owner.id, ...data.apiKeys.map((k: { id: string }) => k.id)]);
      assert.ok(
        data.auditEntries.every((e: { actor: { id: string }; target: { id: string } }) => mine.has(e.actor.id) || e.target.id === owner.id),
        'only entries about me or by me',
      );
      assert.ok(
        data.auditEntries.some(
          (e: { action: string; actor: { type: string; id: string } }) =>
            e.action === 'apikey.revoked' && e.actor.type === 'api_key' && e.actor.id === retired.body.apiKey.id,
        ),
        'what my API keys did is mine too',
      );

      const user = (await t.platform.accounts.store.userById(owner.id))!;
      const sessions = await t.platform.db.selectFrom('sessions').select('token_hash').where('user_id', '=', owner.id).execute();
      const keys = await t.platform.db.selectFrom('api_keys').select('secret_hash').where('user_id', '=', owner.id).execute();
      const codes = await t.platform.db.selectFrom('recovery_codes').select('code_hash').where('user_id', '=', owner.id).execute();
      const forbidden = [
        user.password_hash!,
        user.mfa_secret!,
        owner.secret!,
        ownerToken,
        keySecret,
        ...sessions.map((s) => s.token_hash),
        ...keys.map((k) => k.secret_hash),
        ...codes.map((c) => c.code_hash),
      ];
      for (const value of forbidden) assert.ok(!res.text.includes(value), `export leaks ${value.slice(0, 12)}…`);
      assert.doesNotMatch(res.text, /"(passwordHash|password_hash|tokenHash|token_hash|secretHash|secret_hash|mfaSecret|mfa_secret|hash)"/);
      assert.equal((await client.get('/api/v1/me/export', { token: keySecret })).status, 403, 'an API key cannot export its owner');
      assert.equal((await t.platform.audit.query({ action: 'user.data_exported', targetId: owner.id })).entries.length, 1);
    });

    it("refuses to delete the last owner's account (409 org.last_owner), and asks for a step-up first", async () => {
      t.clock.advance((t.config.sessions.stepUpMinutes + 1) * 60_000);
      const stale = await client.delete('/api/v1/me', { token: ownerToken });
      assert.equal(stale.status, 403);
      assert.equal(stale.body.error.code, 'auth.step_up_required');
      await stepUp(owner, ownerToken);
      const res = await client.delete('/api/v1/me', { token: ownerToken });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'org.last_owner');
      assert.ok(await t.platform.accounts.store.userById(owner.id));
    });

    it('deletes my account with its sessions, recovery codes, API keys and tokens; the audit log keeps its entries', async () => {
      const second = await operatorSession(t, ownerToken, 'second-owner@example.com', 'owner', client);
      const user: TestUser = {
        id: second.userId,
        organization: t.org,
        email: 'second-owner@example.com',
        password: second.password,
        secret: second.secret,
      };
      await stepUp(user, second.token);
      const key = await client.post(
        '/api/v1/me/api-keys',
        { name: 'doomed', scopes: ['audit:read'], expiresInDays: 10 },
        { token: second.token },
      );
      assert.equal(key.status, 201);
      await requestEmailChange(user, second.token, 'second-owner@new.example');
      tokenIn(mails('second-owner@new.example', 'email_change').at(-1)!);

      const deleted = await client.delete('/api/v1/me', { token: second.token });
      assert.equal(deleted.status, 200, deleted.text);

      const db = t.platform.db;
      assert.equal(await t.platform.accounts.store.userById(user.id), undefined);
      for (const table of ['sessions', 'recovery_codes', 'api_keys', 'one_time_tokens'] as const) {
        const rows = await db.selectFrom(table).select('user_id').where('user_id', '=', user.id).execute();
        assert.equal(rows.length, 0, `${table} of the deleted user`);
      }
      assert.equal((await client.get('/api/v1/me', { token: second.token })).status, 401, 'the session is gone');
      assert.equal((await client.get('/api/v1/audit', { token: key.body.secret })).status, 401, 'the API key is gone');

      const created = await t.platform.audit.query({ action: 'user.created', targetId: user.id });
      assert.equal(created.entries.length, 1, 'earlier entries about the user stay');
      const gone = await t.platform.audit.query({ action: 'user.deleted', targetId: user.id });
      assert.deepEqual(gone.entries[0]!.actor, { type: 'user', id: user.id });
      assert.equal((await t.platform.audit.verify()).ok, true);
      assert.equal(mails('second-owner@example.com', 'account_deleted').length, 1);
      const login = await client.post('/api/v1/auth/login', { organization: t.org, email: user.email, password: user.password });
      assert.equal(login.status, 401);
    });
  });
}
