import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DAY, MINUTE } from '../clock.js';
import { createOperator, signIn, type TestUser, stepUp as stepUpAs } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient } from '../testing/http.js';
import { totp, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { sha256Hex } from '../tokens.js';
import { MAX_USABLE_KEYS_PER_USER } from './api-keys.js';

const KEY_FORMAT = /^bwk_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/;

for (const engine of ENGINES) {
  describe(`API keys [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let owner: TestUser;
    let ownerToken: string;

    before(async () => ({ t, client, owner, token: ownerToken } = await startOwnerPlatform(engine)));
    after(() => t?.close());

    const stepUp = (user: TestUser, token: string) => stepUpAs(t, user, token, client);

    async function createKey(
      user: TestUser,
      token: string,
      scopes: string[],
      expiresInDays = 30,
      name = 'automation',
    ): Promise<{ id: string; secret: string }> {
      await stepUp(user, token);
      const res = await client.post('/api/v1/me/api-keys', { name, scopes, expiresInDays }, { token });
      assert.equal(res.status, 201, res.text);
      return { id: res.body.apiKey.id, secret: res.body.secret };
    }

    async function auditCount(action: string, targetId: string): Promise<number> {
      return (await t.platform.audit.query({ action, targetId })).entries.length;
    }

    it('shows the secret once, stores only its digest, and acts as the owner within its scopes', async () => {
      await stepUp(owner, ownerToken);
      const created = await client.post(
        '/api/v1/me/api-keys',
        { name: 'ci pipeline', scopes: ['users:read', 'audit:read'], expiresInDays: 30 },
        { token: ownerToken },
      );
      assert.equal(created.status, 201, created.text);
      const { apiKey, secret } = created.body;
      assert.match(secret, KEY_FORMAT);
      assert.ok(secret.startsWith(`bwk_${apiKey.id}_`));
      assert.deepEqual(apiKey.scopes, ['audit:read', 'users:read']);
      assert.equal(apiKey.revoked, false);
      assert.equal(apiKey.lastUsedAt, null);
      assert.equal(Date.parse(apiKey.expiresAt) - Date.parse(apiKey.createdAt), 30 * DAY);

      const row = await t.platform.db.selectFrom('api_keys').selectAll().where('id', '=', apiKey.id).executeTakeFirstOrThrow();
      assert.equal(row.secret_hash, sha256Hex(secret));
      assert.ok(!JSON.stringify(row).includes(secret.slice(`bwk_${apiKey.id}_`.length)), 'the random part of the secret is not stored');

      assert.equal((await client.get('/api/v1/users', { token: secret })).status, 200);
      assert.equal((await client.get('/api/v1/audit', { token: secret })).status, 200);
      const outside = await client.get('/api/v1/org', { token: secret });
      assert.equal(outside.status, 403, "org:read is in the owner's role but not in the key's scopes");
      assert.equal(outside.body.error.code, 'auth.forbidden');
      const me = await client.get('/api/v1/me', { token: secret });
      assert.equal(me.status, 200);
      assert.equal(me.body.email, owner.email);

      const listed = await client.get('/api/v1/me/api-keys', { token: ownerToken });
      assert.equal(listed.status, 200);
      const mine = listed.body.apiKeys.find((k: { id: string }) => k.id === apiKey.id);
      assert.equal(mine.name, 'ci pipeline');
      assert.notEqual(mine.lastUsedAt, null);
      assert.ok(!listed.text.includes(secret) && !listed.text.includes(row.secret_hash), 'listing shows neither the secret nor its digest');

      const audit = await t.platform.audit.query({ action: 'apikey.created', targetId: apiKey.id });
      assert.equal(audit.entries.length, 1);
      assert.deepEqual(audit.entries[0]!.actor, { type: 'user', id: owner.id });
      assert.deepEqual(audit.entries[0]!.details.scopes, ['audit:read', 'users:read']);
      assert.ok(!JSON.stringify(audit.entries[0]).includes(secret));
    });

    it('records the last use at most once a minute', async () => {
      const key = await createKey(owner, ownerToken, ['audit:read']);
      const lastUsed = async () =>
        (await t.platform.db.selectFrom('api_keys').select('last_used_at').where('id', '=', key.id).executeTakeFirstOrThrow()).last_used_at;
      await client.get('/api/v1/audit', { token: key.secret });
      const first = await lastUsed();
      assert.equal(first, t.clock.now());
      t.clock.advance(20_000);
      await client.get('/api/v1/audit', { token: key.secret });
      assert.equal(await lastUsed(), first, 'not written again within the minute');
      t.clock.advance(MINUTE);
      await client.get('/api/v1/audit', { token: key.secret });
      assert.equal(await lastUsed(), t.clock.now());
    });

    it('refuses to create a key without a fresh step-up', async () => {
      t.clock.advance((t.config.sessions.stepUpMinutes + 1) * MINUTE);
      const res = await client.post(
        '/api/v1/me/api-keys',
        { name: 'stale', scopes: ['audit:read'], expiresInDays: 7 },
        { token: ownerToken },
      );
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'auth.step_up_required');
    });

    it("refuses scopes beyond the creator's role, unknown scopes and lifetimes outside 1-365 days", async () => {
      const auditor = await createOperator(t, 'auditor@example.com', 'auditor');
      const token = await signIn(t, auditor, client);
      await stepUp(auditor, token);
      const beyond = await client.post(
        '/api/v1/me/api-keys',
        { name: 'escalate', scopes: ['audit:read', 'users:manage'], expiresInDays: 7 },
        { token },
      );
      assert.equal(beyond.status, 403);
      assert.equal(beyond.body.error.code, 'auth.forbidden');
      assert.deepEqual(beyond.body.error.details.scopes, ['users:manage']);
      const unknown = await client.post('/api/v1/me/api-keys', { name: 'x', scopes: ['root:everything'], expiresInDays: 7 }, { token });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.code, 'request.invalid');
      for (const expiresInDays of [0, 366]) {
        const res = await client.post('/api/v1/me/api-keys', { name: 'x', scopes: ['audit:read'], expiresInDays }, { token });
        assert.equal(res.status, 400, `expiresInDays ${expiresInDays}`);
      }
      const missing = await client.post('/api/v1/me/api-keys', { name: 'x', scopes: ['audit:read'] }, { token });
      assert.equal(missing.status, 400, 'the expiry is required');
      const empty = await client.post('/api/v1/me/api-keys', { name: 'x', scopes: [], expiresInDays: 7 }, { token });
      assert.equal(empty.status, 400);
      assert.equal((await client.get('/api/v1/me/api-keys', { token })).body.apiKeys.length, 0);
    });

    it(`holds a user to ${MAX_USABLE_KEYS_PER_USER} usable keys; revoking one makes room`, async () => {
      const collector = await createOperator(t, 'collector@example.com', 'auditor');
      const token = await signIn(t, collector, client);
      await stepUp(collector, token);
      const create = () => client.post('/api/v1/me/api-keys', { name: 'many', scopes: ['audit:read'], expiresInDays: 1 }, { token });
      let last = '';
      for (let i = 0; i < MAX_USABLE_KEYS_PER_USER; i++) {
        const res = await create();
        assert.equal(res.status, 201, res.text);
        last = res.body.apiKey.id;
      }
      const over = await create();
      assert.equal(over.status, 409);
      assert.equal(over.body.error.code, 'apikey.limit_reached');
      assert.equal((await client.delete(`/api/v1/me/api-keys/${last}`, { token })).status, 200);
      assert.equal((await create()).status, 201);
    });

    it('refuses a key on a route its scopes do not cover (403)', async () => {
      const key = await createKey(owner, ownerToken, ['audit:read']);
      for (const [method, path] of [
        ['GET', '/api/v1/api-keys'],
        ['DELETE', `/api/v1/api-keys/${key.id}`],
        ['GET', '/api/v1/users'],
      ] as const) {
        const res = await client.request(method, path, { token: key.secret });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      const create = await client.post(
        '/api/v1/users',
        { email: 'sneaky@example.com', name: 'Sneaky', role: 'admin' },
        { token: key.secret },
      );
      assert.equal(create.status, 403);
    });

    it('keeps a key away from step-up, account settings and key creation, whatever its scopes', async () => {
      const key = await createKey(owner, ownerToken, ['users:manage', 'users:read', 'audit:read', 'org:read']);
      const stepUp = await client.post('/api/v1/auth/step-up', { code: await totp(owner.secret!, t.clock) }, { token: key.secret });
      assert.equal(stepUp.status, 403);
      const create = await client.post(
        '/api/v1/me/api-keys',
        { name: 'child', scopes: ['audit:read'], expiresInDays: 7 },
        { token: key.secret },
      );
      assert.equal(create.status, 403);
      for (const [method, path] of [
        ['GET', '/api/v1/me/sessions'],
        ['GET', '/api/v1/me/api-keys'],
        ['GET', '/api/v1/me/export'],
        ['POST', '/api/v1/me/mfa/totp'],
        ['DELETE', '/api/v1/me/mfa'],
        ['DELETE', '/api/v1/me'],
      ] as const) {
        const res = await client.request(method, path, { token: key.secret });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      const rename = await client.patch('/api/v1/me', { name: 'Renamed by a key' }, { token: key.secret });
      assert.equal(rename.status, 403);
      const user = await t.platform.accounts.store.userById(owner.id);
      assert.notEqual(user!.name, 'Renamed by a key');
      assert.notEqual(user!.mfa_enabled_at, null, 'MFA untouched');
    });

    it("refuses a forged key that has a real key's id", async () => {
      const key = await createKey(owner, ownerToken, ['audit:read']);
      const forged = `bwk_${key.id}_${'A'.repeat(43)}`;
      const res = await client.get('/api/v1/audit', { token: forged });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'auth.unauthenticated');
    });

    it('refuses a key once revoked (401), and revoking again changes nothing', async () => {
      const key = await createKey(owner, ownerToken, ['audit:read']);
      assert.equal((await client.get('/api/v1/audit', { token: key.secret })).status, 200);
      const revoked = await client.delete(`/api/v1/me/api-keys/${key.id}`, { token: ownerToken });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(revoked.body.revoked, true);
      const after = await client.get('/api/v1/audit', { token: key.secret });
      assert.equal(after.status, 401);
      assert.equal(after.body.error.code, 'auth.unauthenticated');
      assert.equal((await client.delete(`/api/v1/me/api-keys/${key.id}`, { token: ownerToken })).status, 200);
      assert.equal(await auditCount('apikey.revoked', key.id), 1);
    });

    it('lets a key revoke itself', async () => {
      const key = await createKey(owner, ownerToken, ['audit:read']);
      const res = await client.delete(`/api/v1/me/api-keys/${key.id}`, { token: key.secret });
      assert.equal(res.status, 200, res.text);
      assert.equal((await client.get('/api/v1/audit', { token: key.secret })).status, 401);
      const entry = (await t.platform.audit.query({ action: 'apikey.revoked', targetId: key.id })).entries[0]!;
      assert.deepEqual(entry.actor, { type: 'api_key', id: key.id });
    });

    it("narrows a demoted user's key to the new role, and refuses the key of a disabled user", async () => {
      const admin = await createOperator(t, 'admin@example.com', 'admin');
      const adminToken = await signIn(t, admin, client);
      const key = await createKey(admin, adminToken, ['users:read', 'users:manage', 'org:read']);
      assert.equal((await client.get('/api/v1/users', { token: key.secret })).status, 200);
      assert.equal((await client.get('/api/v1/api-keys', { token: key.secret })).status, 200);

      await stepUp(owner, ownerToken);
      const demoted = await client.patch(`/api/v1/users/${admin.id}`, { role: 'operator' }, { token: ownerToken });
      assert.equal(demoted.status, 200, demoted.text);
      const users = await client.get('/api/v1/users', { token: key.secret });
      assert.equal(users.status, 403, 'users:read left with the admin role');
      assert.equal(users.body.error.code, 'auth.forbidden');
      assert.equal((await client.get('/api/v1/api-keys', { token: key.secret })).status, 403);
      assert.equal(
        (await client.get('/api/v1/org', { token: key.secret })).status,
        200,
        'org:read is in both the scopes and the operator role',
      );

      assert.equal((await client.patch(`/api/v1/users/${admin.id}`, { status: 'disabled' }, { token: ownerToken })).status, 200);
      const disabled = await client.get('/api/v1/org', { token: key.secret });
      assert.equal(disabled.status, 401);
      assert.equal(disabled.body.error.code, 'auth.unauthenticated');
    });

    it("ends a disabled user's keys and sessions for good: enabling the account again revives neither", async () => {
      const leaver = await createOperator(t, 'leaver@example.com', 'operator');
      const leaverToken = await signIn(t, leaver, client);
      const key = await createKey(leaver, leaverToken, ['devices:read', 'org:read']);
      assert.equal((await client.get('/api/v1/org', { token: key.secret })).status, 200, 'the key works before');

      await stepUp(owner, ownerToken);
      const disabled = await client.patch(`/api/v1/users/${leaver.id}`, { status: 'disabled' }, { token: ownerToken });
      assert.equal(disabled.status, 200, disabled.text);
      const enabled = await client.patch(`/api/v1/users/${leaver.id}`, { status: 'active' }, { token: ownerToken });
      assert.equal(enabled.status, 200, enabled.text);

      for (const token of [key.secret, leaverToken]) {
        const res = await client.get('/api/v1/org', { token });
        assert.equal(res.status, 401, 'a key or session from before the account was disabled stays dead');
        assert.equal(res.body.error.code, 'auth.unauthenticated');
      }
      const listed = (await client.get(`/api/v1/api-keys?userId=${leaver.id}`, { token: ownerToken })).body.apiKeys;
      assert.deepEqual(
        listed.map((k: { id: string; revoked: boolean }) => [k.id, k.revoked]),
        [[key.id, true]],
      );
      const entry = (await t.platform.audit.query({ action: 'user.updated', targetId: leaver.id })).entries.find(
        (e) => e.details.status === 'disabled',
      )!;
      assert.equal(entry.details.apiKeysRevoked, 1);
      assert.equal(entry.details.sessionsRevoked, 1);

      // The account itself is back: the user signs in and makes a new key.
      const again = await signIn(t, leaver, client);
      const fresh = await createKey(leaver, again, ['org:read']);
      assert.equal((await client.get('/api/v1/org', { token: fresh.secret })).status, 200);
    });

    it("lets users:manage operators list and revoke their organization's keys, and nobody else's", async () => {
      const auditor = await createOperator(t, 'auditor2@example.com', 'auditor');
      const auditorToken = await signIn(t, auditor, client);
      const auditorKey = await createKey(auditor, auditorToken, ['audit:read']);

      const refused = await client.get('/api/v1/api-keys', { token: auditorToken });
      assert.equal(refused.status, 403, 'an auditor lacks users:manage');
      const ownerKeys = (await client.get('/api/v1/me/api-keys', { token: ownerToken })).body.apiKeys;
      const notMine = await client.delete(`/api/v1/me/api-keys/${ownerKeys[0].id}`, { token: auditorToken });
      assert.equal(notMine.status, 404, "another user's key is not in my keys");

      const all = await client.get(`/api/v1/api-keys?userId=${auditor.id}`, { token: ownerToken });
      assert.equal(all.status, 200);
      assert.deepEqual(
        all.body.apiKeys.map((k: { id: string }) => k.id),
        [auditorKey.id],
      );
      assert.ok(!all.text.includes(auditorKey.secret));

      const seen = new Set<string>();
      let cursor: string | null = null;
      do {
        const page: { body: { apiKeys: { id: string }[]; nextCursor: string | null } } = await client.get(
          `/api/v1/api-keys?limit=2${cursor ? `&before=${cursor}` : ''}`,
          { token: ownerToken },
        );
        assert.ok(page.body.apiKeys.length <= 2);
        for (const k of page.body.apiKeys) seen.add(k.id);
        cursor = page.body.nextCursor;
      } while (cursor);
      const count = await t.platform.db.selectFrom('api_keys').select('id').execute();
      assert.equal(seen.size, count.length, 'pagination visits every key once');

      const revoked = await client.delete(`/api/v1/api-keys/${auditorKey.id}`, { token: ownerToken });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal((await client.get('/api/v1/audit', { token: auditorKey.secret })).status, 401);
      const entry = (await t.platform.audit.query({ action: 'apikey.revoked', targetId: auditorKey.id })).entries[0]!;
      assert.deepEqual(entry.actor, { type: 'user', id: owner.id });
      assert.equal(entry.details.userId, auditor.id);
    });

    it("cannot revoke or list another organization's key (404)", async () => {
      await t.platform.accounts.service.createOrganization({ slug: 'rival', name: 'Rival' }, { type: 'cli', id: 'test' });
      const mallory = await createOperator(t, 'mallory@rival.example', 'auditor', 'rival');
      const malloryToken = await signIn(t, mallory, client);
      const rivalKey = await createKey(mallory, malloryToken, ['audit:read']);

      for (const path of [`/api/v1/api-keys/${rivalKey.id}`, `/api/v1/me/api-keys/${rivalKey.id}`]) {
        const res = await client.delete(path, { token: ownerToken });
        assert.equal(res.status, 404, path);
        assert.equal(res.body.error.code, 'resource.not_found');
      }
      const listed = await client.get('/api/v1/api-keys?limit=200', { token: ownerToken });
      assert.ok(!listed.body.apiKeys.some((k: { id: string }) => k.id === rivalKey.id));
      const stillWorks = await client.get('/api/v1/audit', { token: rivalKey.secret });
      assert.equal(stillWorks.status, 200);
      const orgIds = new Set(stillWorks.body.entries.map((e: { organizationId: string }) => e.organizationId));
      assert.equal(orgIds.size, 1, 'the rival key sees only its own organization');
      assert.equal(await auditCount('apikey.revoked', rivalKey.id), 0);
    });

    it('refuses a key after it expires (401) and lists it as expired', async () => {
      const key = await createKey(owner, ownerToken, ['audit:read'], 1);
      t.clock.advance(DAY - MINUTE);
      assert.equal((await client.get('/api/v1/audit', { token: key.secret })).status, 200, 'still valid a minute before expiry');
      t.clock.advance(MINUTE);
      const expired = await client.get('/api/v1/audit', { token: key.secret });
      assert.equal(expired.status, 401);
      assert.equal(expired.body.error.code, 'auth.unauthenticated');

      // A day later the owner's session is long gone: sign in again to read the listing.
      const token = await signIn(t, owner, client);
      const listed = await client.get('/api/v1/me/api-keys', { token });
      const shown = listed.body.apiKeys.find((k: { id: string }) => k.id === key.id);
      assert.equal(shown.expired, true);
      assert.equal(shown.revoked, false);
    });
  });
}
