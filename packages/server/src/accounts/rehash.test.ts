import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hash } from '@node-rs/argon2';
import { ENGINES } from '../testing/engines.js';
import { startTestPlatform, STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';
import { newUserRow } from './store.js';
import { ARGON2_PARAMS, needsRehash } from './passwords.js';

for (const engine of ENGINES) {
  describe(`password hash upgrade [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine);
    });
    after(() => t?.close());

    it('rehashes a password stored with weaker argon2id parameters at the next successful sign-in', async () => {
      const { store } = t.platform.accounts;
      const org = (await store.organizationBySlug(t.org))!;
      const legacy = await hash(STRONG_PASSWORD, { ...ARGON2_PARAMS, memoryCost: 4096, timeCost: 1 });
      const now = t.clock.now();
      const row = newUserRow({
        organizationId: org.id,
        kind: 'operator',
        email: 'legacy@example.com',
        name: 'Legacy',
        role: 'operator',
        passwordHash: legacy,
        emailVerifiedAt: now,
        mustChangePassword: false,
        now,
      });
      await store.insertUser(row);
      const id = row.id;

      assert.equal(needsRehash(legacy), true);

      const wrong = await t
        .client()
        .post('/api/v1/auth/login', { organization: t.org, email: 'legacy@example.com', password: 'not the password at all 1' });
      assert.equal(wrong.status, 401);
      assert.equal((await store.userById(id))!.password_hash, legacy, 'a failed attempt does not touch the hash');

      const ok = await t
        .client()
        .post('/api/v1/auth/login', { organization: t.org, email: 'legacy@example.com', password: STRONG_PASSWORD });
      assert.equal(ok.body.status, 'ok');
      const upgraded = (await store.userById(id))!.password_hash!;
      assert.notEqual(upgraded, legacy);
      assert.equal(needsRehash(upgraded), false);
      assert.match(upgraded, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

      const again = await t
        .client()
        .post('/api/v1/auth/login', { organization: t.org, email: 'legacy@example.com', password: STRONG_PASSWORD });
      assert.equal(again.body.status, 'ok', 'the upgraded hash still verifies');
    });
  });
}
