import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOperator, signIn, type TestUser } from '../../testing/accounts.js';
import { ENGINES } from '../../testing/engines.js';
import type { TestPlatform } from '../../testing/server.js';
import { startOwnerPlatform } from '../../testing/owner-platform.js';

/** Emails with the characters LIKE and SQL treat specially; each one is a valid address. */
const SPECIAL = ["o'brien@example.com", '100%off@example.com', 'a_b@example.com', 'axb@example.com', 'back\\slash@example.com'];

const PAYLOADS = [
  "' OR 1=1 --",
  "' OR '1'='1",
  "%' OR email LIKE '%",
  '"; DROP TABLE users; --',
  "'); DELETE FROM users; --",
  '\\%',
  '%%',
  '_%_',
];

for (const engine of ENGINES) {
  describe(`SQL injection through filters and fields [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let usersBefore: number;
    before(async () => {
      let owner: TestUser;
      ({ t, owner } = await startOwnerPlatform(engine));
      for (const email of SPECIAL) await createOperator(t, email, 'operator');
      token = await signIn(t, owner);
      usersBefore = await countUsers();
    });
    after(() => t?.close());

    async function countUsers(): Promise<number> {
      return (await t.platform.db.selectFrom('users').select('id').execute()).length;
    }

    async function usersMatching(email: string): Promise<string[]> {
      const res = await t.client().get(`/api/v1/users?${new URLSearchParams({ email })}`, { token });
      assert.equal(res.status, 200, res.text);
      return res.body.users.map((u: { email: string }) => u.email);
    }

    async function auditMatching(filter: Record<string, string>): Promise<Array<{ action: string }>> {
      const res = await t.client().get(`/api/v1/audit?${new URLSearchParams({ ...filter, limit: '500' })}`, { token });
      assert.equal(res.status, 200, res.text);
      return res.body.entries;
    }

    it('matches the users email filter literally: %, _ and \\ are not wildcards, quotes are not SQL', async () => {
      assert.deepEqual(await usersMatching('%'), ['100%off@example.com']);
      assert.deepEqual(await usersMatching('_'), ['a_b@example.com']);
      assert.deepEqual(await usersMatching('a_b'), ['a_b@example.com']);
      assert.deepEqual(await usersMatching('\\'), ['back\\slash@example.com']);
      assert.deepEqual(await usersMatching("o'b"), ["o'brien@example.com"]);
      assert.deepEqual(await usersMatching('%OFF'), ['100%off@example.com']);
      for (const payload of PAYLOADS) assert.deepEqual(await usersMatching(payload), [], payload);
      assert.equal((await usersMatching('@example.com')).length, SPECIAL.length, 'a plain substring still matches');
    });

    it('matches audit filters exactly: wildcards and injection payloads find nothing', async () => {
      const logins = await auditMatching({ action: 'auth.login' });
      assert.ok(logins.length > 0);
      assert.ok(logins.every((e) => e.action === 'auth.login'));
      for (const payload of [...PAYLOADS, '%', '_', 'auth.%', 'auth.login%']) {
        assert.deepEqual(await auditMatching({ action: payload }), [], payload);
        assert.deepEqual(await auditMatching({ actorId: payload }), [], payload);
        assert.deepEqual(await auditMatching({ targetId: payload }), [], payload);
      }
    });

    it('takes sign-in fields and path parameters as data', async () => {
      for (const payload of PAYLOADS) {
        for (const body of [
          { organization: payload, email: t.owner.email, password: payload },
          { organization: t.org, email: payload, password: payload },
          { organization: t.org, email: `${t.owner.email}' --`, password: payload },
        ]) {
          const res = await t.client().post('/api/v1/auth/login', body);
          assert.ok(res.status === 401 || res.status === 400, `${res.status} ${res.text}`);
          assert.notEqual(res.body.status, 'ok');
        }
        const byId = await t.client().get(`/api/v1/users/${encodeURIComponent(payload)}`, { token });
        assert.equal(byId.status, 404, byId.text);
      }
    });

    it('leaves the database intact afterwards', async () => {
      for (const payload of PAYLOADS) {
        await usersMatching(payload);
        await auditMatching({ action: payload });
      }
      assert.equal(await countUsers(), usersBefore);
      assert.equal((await usersMatching('@example.com')).length, SPECIAL.length);
      const report = await t.platform.audit.verify();
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal((await t.client().get('/api/v1/org', { token })).status, 200);
    });
  });
}
