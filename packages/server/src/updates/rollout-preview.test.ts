/**
 * The rollout preview (`POST /api/v1/updates/rollouts/preview`): the device count a selector
 * would enrol, the devices another rollout holds, and that nothing is created; the same
 * validation, permission and organization scoping as creating a rollout.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../accounts/roles.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { hardwareProduct, insertRelease, registerDevices, ROLLOUTS_TICKED_BY_TEST, type TestRelease } from '../testing/rollout-fixtures.js';
import type { TestPlatform } from '../testing/server.js';

const ORG_B = 'preview-org-b';

for (const engine of ENGINES) {
  describe(`rollout preview [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let org: string;
    let release: TestRelease;

    before(async () => {
      ({ t, token } = await startOwnerPlatform(engine, ROLLOUTS_TICKED_BY_TEST));
      org = await organizationIdOf(t.platform, t.org);
      const product = await hardwareProduct(t.platform, org, 'Previewed sensor');
      release = await insertRelease(t.platform, org, product, '4.0.0');
      await registerDevices(t.platform, org, product, 'NORTH', 5, { tags: ['north'] });
      await registerDevices(t.platform, org, product, 'SOUTH', 3, { tags: ['south'], group: 'lab' });
      await registerDevices(t.platform, org, product, 'WAITING', 2, { tags: ['north'], pending: true });
    });
    after(() => t?.close());

    const preview = (body: unknown, as = token) => t.client().post('/api/v1/updates/rollouts/preview', body, { token: as });

    it('counts the devices a selector matches, and creates nothing', async () => {
      const north = await preview({ releaseId: release.id, selector: { tags: ['north'] } });
      assert.equal(north.status, 200, north.text);
      // The two pending (never enrolled) devices tagged north are not counted, as create leaves them out.
      assert.deepEqual(north.body, { matched: 5, enrollable: 5, busy: 0 });
      const either = await preview({ releaseId: release.id, selector: { tags: ['north'], groups: ['lab'] } });
      assert.deepEqual(either.body, { matched: 8, enrollable: 8, busy: 0 }, 'any of the entries matches');
      const { rollouts } = await t.platform.updates.rollouts.list(cliActor(org, 'test'), {});
      assert.equal(rollouts.length, 0, 'a preview creates no rollout');
    });

    it('counts the devices another unfinished rollout holds as busy, as create would skip them', async () => {
      const created = await t
        .client()
        .post('/api/v1/updates/rollouts', { releaseId: release.id, selector: { groups: ['lab'] } }, { token });
      assert.equal(created.status, 201, created.text);
      const all = await preview({ releaseId: release.id, selector: { tags: ['north', 'south'] } });
      assert.deepEqual(all.body, { matched: 8, enrollable: 5, busy: 3 });
    });

    it('refuses what create refuses: a bad selector, an unknown release, another organization, a reader', async () => {
      const empty = await preview({ releaseId: release.id, selector: {} });
      assert.equal(empty.status, 400, empty.text);
      assert.equal((await preview({ releaseId: release.id, selector: { tags: [] } })).status, 400);
      assert.equal((await preview({ releaseId: release.id, selector: { tags: ['x'] }, phases: [] })).status, 400, 'unknown fields refused');
      const unknown = await preview({ releaseId: '00000000-0000-4000-8000-000000000000', selector: { tags: ['north'] } });
      assert.equal(unknown.status, 404, unknown.text);

      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      const stranger = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      const across = await preview({ releaseId: release.id, selector: { tags: ['north'] } }, stranger);
      assert.equal(across.status, 404, "another organization's release is not found");

      const reader = await signIn(t, await createOperator(t, 'reader@example.com', 'auditor'));
      const refused = await preview({ releaseId: release.id, selector: { tags: ['north'] } }, reader);
      assert.equal(refused.status, 403, refused.text);
    });
  });
}
