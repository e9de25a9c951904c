import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../../testing/engines.js';
import { organizationIdOf, testProduct } from '../../testing/devices.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

for (const engine of ENGINES) {
  describe(`request bodies are not coerced [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let productId: string;
    before(async () => {
      t = await startTestPlatform(engine);
      productId = await testProduct(t.platform, await organizationIdOf(t.platform, t.org));
      ({ token } = await ownerSession(t));
    });
    after(() => t?.close());

    const devicesStored = async () => (await t.platform.db.selectFrom('devices').select('id').execute()).length;

    function assertRefused(
      res: {
        status: number;
        text: string;
        body: { error?: { code: string; message: string; details?: { problems?: Array<{ field: string }> } } };
      },
      field: string,
    ) {
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error?.code, 'request.invalid');
      assert.equal(typeof res.body.error?.message, 'string');
      const fields = new Set(res.body.error?.details?.problems?.map((p) => p.field));
      assert.deepEqual([...fields], [field], res.text);
    }

    it('refuses a number, a boolean or null where a string is expected, and a string where an array is expected, storing nothing', async () => {
      const client = t.client();
      for (const [bad, field] of [
        [{ serial: 123 }, 'body.serial'],
        [{ serial: true }, 'body.serial'],
        [{ serial: null }, 'body.serial'],
        [{ serial: 'SB-1', tags: 'x' }, 'body.tags'],
        [{ serial: 'SB-2', tags: [7] }, 'body.tags.0'],
        [{ serial: 'SB-3', group: 5 }, 'body.group'],
      ] as const) {
        assertRefused(await client.post('/api/v1/devices', { productId, ...bad }, { token }), field);
      }
      assert.equal(await devicesStored(), 0);
      const good = await client.post('/api/v1/devices', { productId, serial: '123', tags: ['x'] }, { token });
      assert.equal(good.status, 201, good.text);
      assert.equal(good.body.serial, '123');
    });

    it('refuses a number given as a string in a body, on create and on change', async () => {
      const client = t.client();
      assertRefused(
        await client.post('/api/v1/products', { name: 'Coerced', telemetryRetentionDays: '7' }, { token }),
        'body.telemetryRetentionDays',
      );
      assertRefused(await client.post('/api/v1/products', { name: 'Coerced', hardwareRevision: null }, { token }), 'body.hardwareRevision');
      assert.equal((await t.platform.db.selectFrom('products').select('id').where('name', '=', 'Coerced').execute()).length, 0);
      assertRefused(
        await client.patch(`/api/v1/products/${productId}`, { telemetryRetentionDays: '7' }, { token }),
        'body.telemetryRetentionDays',
      );
      assertRefused(
        await client.patch(`/api/v1/products/${productId}`, { telemetryRetentionDays: true }, { token }),
        'body.telemetryRetentionDays',
      );
      const product = await t.platform.db
        .selectFrom('products')
        .select('telemetry_retention_days')
        .where('id', '=', productId)
        .executeTakeFirstOrThrow();
      assert.equal(product.telemetry_retention_days, null);
      const cleared = await client.patch(`/api/v1/products/${productId}`, { telemetryRetentionDays: null }, { token });
      assert.equal(cleared.status, 200, cleared.text);
    });

    it('still reads numbers from the query string', async () => {
      const client = t.client();
      const page = await client.get('/api/v1/devices?limit=1', { token });
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body.devices.length, 1);
      const bad = await client.get('/api/v1/devices?limit=many', { token });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'request.invalid');
    });
  });
}
