import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createOperator, insertConsumer, organizationId, signIn, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { cliActor } from './roles.js';

const ORG_B = 'org-b';

for (const engine of ENGINES) {
  describe(`organization isolation and roles [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let ownerA: TestUser;
    let ownerB: TestUser;
    let victim: TestUser;
    let orgA: string;
    let orgB: string;
    before(async () => {
      ({ t, owner: ownerA } = await startOwnerPlatform(engine));
      orgA = await organizationId(t);
      orgB = (await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' }))
        .id;
      ownerB = await createOperator(t, 'owner-b@example.com', 'owner', ORG_B);
      await signIn(t, ownerB);
      victim = await createOperator(t, 'victim@example.com', 'operator');
    });
    after(() => t?.close());

    const activeOwners = async (organization: string) =>
      (
        await t.platform.db
          .selectFrom('users')
          .select('id')
          .where('organization_id', '=', organization)
          .where('role', '=', 'owner')
          .where('status', '=', 'active')
          .execute()
      ).length;

    it("answers another organization's user IDs with the 404 of an unknown ID: read, change, unlock, MFA reset", async () => {
      const token = await signIn(t, ownerB);
      const victimToken = await signIn(t, victim);
      const client = t.client();
      const probes = (id: string) => [
        client.get(`/api/v1/users/${id}`, { token }),
        client.patch(`/api/v1/users/${id}`, { status: 'disabled', role: 'owner' }, { token }),
        client.post(`/api/v1/users/${id}/unlock`, undefined, { token }),
        client.post(`/api/v1/users/${id}/mfa-reset`, undefined, { token }),
      ];
      const onVictim = await Promise.all(probes(victim.id));
      const onNobody = await Promise.all(probes(randomUUID()));
      onVictim.forEach((res, i) => {
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.error.code, 'resource.not_found');
        assert.equal(res.body.error.message, onNobody[i]!.body.error.message);
        assert.equal(onNobody[i]!.status, 404);
      });
      const row = (await t.platform.accounts.store.userById(victim.id))!;
      assert.equal(row.status, 'active');
      assert.equal(row.role, 'operator');
      assert.equal((await client.get('/api/v1/auth/session', { token: victimToken })).status, 200);
      assert.equal(
        (await client.get(`/api/v1/users/${victim.id}`, { token: await signIn(t, ownerA) })).status,
        200,
        'its own organization sees the user',
      );
    });

    it('lists, and reads the organization of, the caller only', async () => {
      const token = await signIn(t, ownerB);
      const client = t.client();
      const users = await client.get('/api/v1/users?limit=200', { token });
      assert.deepEqual(
        users.body.users.map((u: { email: string }) => u.email),
        [ownerB.email],
      );
      assert.deepEqual((await client.get(`/api/v1/users?email=${encodeURIComponent(victim.email)}`, { token })).body.users, []);
      const org = await client.get('/api/v1/org', { token });
      assert.equal(org.body.id, orgB);
      assert.equal(org.body.slug, ORG_B);
    });

    it('shows an organization only its own audit entries, in queries and in the export', async () => {
      const token = await signIn(t, ownerB);
      const client = t.client();
      const own = await client.get('/api/v1/audit?limit=500', { token });
      assert.ok(own.body.entries.length > 0);
      for (const entry of own.body.entries) assert.equal(entry.organizationId, orgB);
      assert.deepEqual((await client.get(`/api/v1/audit?targetId=${victim.id}`, { token })).body.entries, []);
      assert.deepEqual((await client.get(`/api/v1/audit?actorId=${ownerA.id}`, { token })).body.entries, []);
      const exported = await client.get('/api/v1/audit/export', { token });
      assert.equal(exported.status, 200);
      const lines = exported.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { organizationId: string });
      assert.ok(lines.length > 0);
      for (const line of lines) assert.equal(line.organizationId, orgB);

      const fromA = await client.get('/api/v1/audit?limit=500', { token: await signIn(t, ownerA) });
      assert.ok(fromA.body.entries.length > 0);
      for (const entry of fromA.body.entries) assert.equal(entry.organizationId, orgA);
    });

    it("cannot revoke another organization's sessions", async () => {
      const victimToken = await signIn(t, victim);
      const client = t.client();
      const [session] = (await client.get('/api/v1/me/sessions', { token: victimToken })).body.sessions;
      const res = await client.delete(`/api/v1/me/sessions/${session.id}`, { token: await signIn(t, ownerB) });
      assert.equal(res.status, 404);
      assert.equal((await client.get('/api/v1/auth/session', { token: victimToken })).status, 200);
    });

    it('signs in to the organization named, when the same email exists in both', async () => {
      const inA = await createOperator(t, 'shared@example.com', 'operator');
      const inB = await createOperator(t, 'shared@example.com', 'operator', ORG_B, 'another long passphrase for org b');
      const client = t.client();
      const crossed = await client.post('/api/v1/auth/login', { organization: t.org, email: inB.email, password: inB.password });
      assert.equal(crossed.status, 401);
      const token = await signIn(t, inB);
      const session = await client.get('/api/v1/auth/session', { token });
      assert.equal(session.body.user.id, inB.id);
      assert.equal(session.body.user.organizationId, orgB);
      assert.notEqual(inA.id, inB.id);
    });

    it('refuses operator routes to a consumer', async () => {
      const consumer = await insertConsumer(t, 'buyer@example.com', 'a consumer passphrase');
      const token = await signIn(t, consumer);
      const client = t.client();
      const session = await client.get('/api/v1/auth/session', { token });
      assert.equal(session.body.user.kind, 'consumer');
      const tries = [
        await client.get('/api/v1/users', { token }),
        await client.get('/api/v1/org', { token }),
        await client.get('/api/v1/audit', { token }),
        await client.get('/api/v1/audit/export', { token }),
        await client.post('/api/v1/users', { email: 'minion@example.com', name: 'Minion', role: 'owner' }, { token }),
        await client.get(`/api/v1/users/${consumer.id}`, { token }),
        await client.patch(`/api/v1/users/${consumer.id}`, { role: 'owner' }, { token }),
        await client.post(`/api/v1/users/${victim.id}/unlock`, undefined, { token }),
      ];
      for (const res of tries) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      const row = (await t.platform.accounts.store.userById(consumer.id))!;
      assert.equal(row.role, null);
      assert.equal(await t.platform.accounts.store.userByEmail(orgA, 'minion@example.com'), undefined);
    });

    it('lets an auditor read users and the audit log but change nothing', async () => {
      const auditor = await createOperator(t, 'auditor@example.com', 'auditor');
      const token = await signIn(t, auditor);
      const client = t.client();
      assert.equal((await client.get('/api/v1/users', { token })).status, 200);
      assert.equal((await client.get('/api/v1/audit', { token })).status, 200);
      const tries = [
        await client.post('/api/v1/users', { email: 'new@example.com', name: 'New', role: 'operator' }, { token }),
        await client.patch(`/api/v1/users/${victim.id}`, { name: 'Renamed' }, { token }),
        await client.post(`/api/v1/users/${victim.id}/unlock`, undefined, { token }),
        await client.post(`/api/v1/users/${victim.id}/mfa-reset`, undefined, { token }),
      ];
      for (const res of tries) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      assert.equal((await t.platform.accounts.store.userById(victim.id))!.name, 'victim');
    });

    it('keeps an admin below owner: no granting owner, no demoting, disabling or resetting an owner', async () => {
      const admin = await createOperator(t, 'admin@example.com', 'admin');
      const token = await signIn(t, admin);
      const client = t.client();
      const tries = [
        await client.post('/api/v1/users', { email: 'crowned@example.com', name: 'Crowned', role: 'owner' }, { token }),
        await client.patch(`/api/v1/users/${victim.id}`, { role: 'owner' }, { token }),
        await client.patch(`/api/v1/users/${ownerA.id}`, { role: 'admin' }, { token }),
        await client.patch(`/api/v1/users/${ownerA.id}`, { status: 'disabled' }, { token }),
        await client.post(`/api/v1/users/${ownerA.id}/mfa-reset`, undefined, { token }),
        await client.patch(`/api/v1/users/${admin.id}`, { role: 'owner' }, { token }),
      ];
      for (const res of tries) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      const owner = (await t.platform.accounts.store.userById(ownerA.id))!;
      assert.equal(owner.role, 'owner');
      assert.equal(owner.status, 'active');
      assert.notEqual(owner.mfa_enabled_at, null);
      assert.equal((await t.platform.accounts.store.userById(victim.id))!.role, 'operator');
      const allowed = await client.patch(`/api/v1/users/${victim.id}`, { role: 'auditor' }, { token });
      assert.equal(allowed.status, 200, allowed.text);
      await t.platform.accounts.store.updateUser(victim.id, { role: 'operator' });
    });

    it('never leaves an organization without an active owner', async () => {
      const token = await signIn(t, ownerA);
      const self = await t.client().patch(`/api/v1/users/${ownerA.id}`, { role: 'admin' }, { token });
      assert.equal(self.status, 403, 'an owner cannot demote themselves');
      const service = t.platform.accounts.service;
      for (const change of [{ role: 'admin' as const }, { status: 'disabled' as const }]) {
        await assert.rejects(service.updateUser(cliActor(orgA), ownerA.id, change), { code: 'org.last_owner' });
      }
      assert.equal(await activeOwners(orgA), 1);
    });

    it('keeps an owner when two owners demote or disable each other at the same moment', async () => {
      for (const change of [{ role: 'admin' }, { status: 'disabled' }]) {
        const second = await createOperator(t, `co-owner-${Object.keys(change)[0]}@example.com`, 'owner');
        const [first, other] = [await signIn(t, ownerA), await signIn(t, second)];
        assert.equal(await activeOwners(orgA), 2);
        const answers = await Promise.all([
          t.client().patch(`/api/v1/users/${second.id}`, change, { token: first }),
          t.client().patch(`/api/v1/users/${ownerA.id}`, change, { token: other }),
        ]);
        assert.equal(await activeOwners(orgA), 1, `answers: ${answers.map((a) => a.status).join(', ')}`);
        const owner = (await t.platform.accounts.store.userById(ownerA.id))!;
        if (owner.role !== 'owner' || owner.status !== 'active')
          await t.platform.accounts.store.updateUser(ownerA.id, { role: 'owner', status: 'active' });
        await t.platform.accounts.store.updateUser(second.id, { role: 'admin', status: 'disabled' });
      }
    });
  });
}
