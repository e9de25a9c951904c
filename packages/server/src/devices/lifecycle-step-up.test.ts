/**
 * Disabling or retiring a device takes it out of service (retired for good): like role changes
 * and API keys, the API asks for a recent step-up first. The attack: a stolen or left-open
 * session without a fresh second proof, and an API key, try to disable and retire a device;
 * each is refused with a stable code and the device's status is untouched. Quarantine (a
 * protective action) and activate still need no step-up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOperator, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';

const STEP_UP_WINDOW_MS = 5 * 60_000;

for (const engine of ENGINES) {
  describe(`device lifecycle behind step-up [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let ownerToken: string;
    let operator: TestUser;
    let token: string;
    let product: string;

    before(async () => {
      ({ t, token: ownerToken } = await startOwnerPlatform(engine));
      product = (await t.client().post('/api/v1/products', { name: 'Lock' }, { token: ownerToken })).body.id;
      operator = await createOperator(t, 'lifecycle-operator@example.com', 'operator');
      token = await signIn(t, operator);
    });
    after(() => t?.close());

    const device = async (serial: string): Promise<string> => {
      const created = await t.client().post('/api/v1/devices', { serial, productId: product }, { token: ownerToken });
      assert.equal(created.status, 201, created.text);
      return created.body.id as string;
    };
    const act = (id: string, action: string, as = token) => t.client().post(`/api/v1/devices/${id}/${action}`, undefined, { token: as });
    const statusOf = async (id: string) => (await t.client().get(`/api/v1/devices/${id}`, { token: ownerToken })).body.status as string;

    it('refuses disable and retire from a session without a recent step-up, and changes nothing', async () => {
      t.clock.advance(STEP_UP_WINDOW_MS + 1000);
      const id = await device('STEP-1');
      for (const action of ['disable', 'retire']) {
        const refused = await act(id, action);
        assert.equal(refused.status, 403, refused.text);
        assert.equal(refused.body.error.code, 'auth.step_up_required');
      }
      assert.equal(await statusOf(id), 'pending');
      const { entries } = await t.platform.audit.query({ targetId: id, action: 'device.status_changed' });
      assert.equal(entries.length, 0, 'no status change was recorded');
      // Protective and restoring actions stay one click away.
      assert.equal((await act(id, 'quarantine')).status, 200);
      assert.equal((await act(id, 'activate')).status, 200);
    });

    it('allows them right after a step-up, and refuses again once the step-up is stale', async () => {
      const id = await device('STEP-2');
      await stepUp(t, operator, token);
      const disabled = await act(id, 'disable');
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal(disabled.body.status, 'disabled');
      t.clock.advance(STEP_UP_WINDOW_MS + 1000);
      const late = await act(id, 'retire');
      assert.equal(late.status, 403, late.text);
      assert.equal(late.body.error.code, 'auth.step_up_required');
      assert.equal(await statusOf(id), 'disabled');
      await stepUp(t, operator, token);
      assert.equal((await act(id, 'retire')).body.status, 'retired');
    });

    it('refuses them to an API key with the devices:write scope', async () => {
      const id = await device('STEP-3');
      await stepUp(t, operator, token);
      const created = await t
        .client()
        .post('/api/v1/me/api-keys', { name: 'automation', scopes: ['devices:read', 'devices:write'], expiresInDays: 1 }, { token });
      assert.equal(created.status, 201, created.text);
      const key = created.body.secret as string;
      assert.equal((await act(id, 'quarantine', key)).status, 200, 'the key may do what needs no step-up');
      for (const action of ['disable', 'retire']) {
        const refused = await act(id, action, key);
        assert.equal(refused.status, 403, refused.text);
        assert.equal(refused.body.error.code, 'auth.forbidden');
      }
      assert.equal(await statusOf(id), 'quarantined');
    });

    it('answers an unknown device with 404 before asking for a step-up', async () => {
      t.clock.advance(STEP_UP_WINDOW_MS + 1000);
      const unknown = await act('00000000-0000-4000-8000-000000000000', 'retire');
      assert.equal(unknown.status, 404, unknown.text);
    });
  });
}
