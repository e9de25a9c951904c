import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../accounts/roles.js';
import { organizationIdOf } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { TelemetryQuota, type QuotaSubject } from './quota.js';

const DAY = 86_400_000;
const DEFAULTS = { dailyReadings: 1000, dailyBytes: 64 * 1024 };

for (const engine of ENGINES) {
  describe(`daily telemetry quota [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let serial = 0;
    const quotaOf = () => new TelemetryQuota(t.platform.telemetry.store, t.platform.devices.service, t.clock, DEFAULTS);
    const subject = async (productId: string): Promise<QuotaSubject> => {
      const device = await t.platform.devices.service.register(cliActor(org, 'test'), { serial: `Q-${++serial}`, productId });
      return { deviceId: device.id, organizationId: org, productId };
    };

    before(async () => {
      t = await startTestPlatform(engine, {
        mqtt: { enabled: false },
        telemetry: { dailyReadingsPerDevice: DEFAULTS.dailyReadings, dailyBytesPerDevice: DEFAULTS.dailyBytes },
      });
      org = await organizationIdOf(t.platform, t.org);
    });
    after(() => t?.close());

    it('admits readings up to the day’s quota and refuses the message that would cross it, whole', async () => {
      const product = await t.platform.devices.service.createProduct(cliActor(org, 'test'), { name: 'Default quota' });
      const device = await subject(product.id);
      const quota = quotaOf();
      assert.deepEqual(await quota.admit(device, 600, 100), { admitted: true });
      assert.deepEqual(quota.admitKnown(device, 400, 100), { admitted: true }, 'known without a query, exactly up to the limit');
      assert.deepEqual(quota.admitKnown(device, 1, 10), { admitted: false, exceeded: 'readings', used: 1000, limit: 1000 });
      const other = await subject(product.id);
      assert.deepEqual(
        await quota.admit(other, 1, 64 * 1024 + 1),
        { admitted: false, exceeded: 'bytes', used: 0, limit: 64 * 1024 },
        'bytes are a limit of their own',
      );
      assert.deepEqual(await quota.admit(other, 1000, 64 * 1024), { admitted: true }, 'another device has its own allowance');
    });

    it('keeps the count across a restart and across nodes once written, and starts again on the next UTC day', async () => {
      const product = await t.platform.devices.service.createProduct(cliActor(org, 'test'), { name: 'Restarted' });
      const device = await subject(product.id);
      const first = quotaOf();
      assert.deepEqual(await first.admit(device, 900, 900), { admitted: true });
      await first.flush();
      const second = quotaOf(); // a restarted node, or another node the device reconnected to
      assert.deepEqual(await second.admit(device, 101, 1), { admitted: false, exceeded: 'readings', used: 900, limit: 1000 });
      assert.deepEqual(await second.admit(device, 100, 1), { admitted: true });
      await second.flush();
      const stored = await t.platform.telemetry.store.usage(device.deviceId, Math.floor(t.clock.now() / DAY));
      assert.deepEqual(stored, { readings: 1000, bytes: 901 }, 'both nodes’ admissions are added up in storage');

      t.clock.advance(DAY);
      assert.equal(second.admitKnown(device, 1, 1), null, 'a new day is looked up, not answered from yesterday’s count');
      assert.deepEqual(await second.admit(device, 1000, 1), { admitted: true }, 'a new day, a new allowance');
    });

    it('applies the product’s own quota (set through the API, audited) instead of the default, within a minute of the change', async () => {
      const { token } = await ownerSession(t);
      const client = t.client();
      const created = await client.post(
        '/api/v1/products',
        { name: 'Chatty', telemetryDailyReadings: 5000, telemetryDailyBytes: 1024 * 1024 },
        { token },
      );
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.telemetryDailyReadings, 5000);
      const device = await subject(created.body.id);
      const quota = quotaOf();
      assert.deepEqual(await quota.admit(device, 4000, 1000), { admitted: true }, 'over the default of 1,000, within the product’s 5,000');

      for (const bad of [{ telemetryDailyReadings: 0 }, { telemetryDailyReadings: 2.5 }, { telemetryDailyBytes: 1023 }]) {
        assert.equal((await client.patch(`/api/v1/products/${created.body.id}`, bad, { token })).status, 400, JSON.stringify(bad));
      }
      const lowered = await client.patch(`/api/v1/products/${created.body.id}`, { telemetryDailyReadings: 4500 }, { token });
      assert.equal(lowered.status, 200, lowered.text);
      t.clock.advance(61_000);
      assert.deepEqual(await quota.admit(device, 600, 1), { admitted: false, exceeded: 'readings', used: 4000, limit: 4500 });

      const usage = await client.get(`/api/v1/devices/${device.deviceId}/telemetry/usage`, { token });
      assert.equal(usage.status, 200, usage.text);
      assert.equal(usage.body.limits.readings, 4500);
      assert.deepEqual(usage.body.source, { readings: 'product', bytes: 'product' });
      const entries = (await t.platform.audit.query({ organizationId: org, targetId: created.body.id })).entries;
      assert.deepEqual(entries.find((e) => e.action === 'product.updated')?.details.telemetryDailyReadings, { from: 5000, to: 4500 });
    });
  });
}
