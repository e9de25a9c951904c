/**
 * GET /fleet/telemetry/rate on both engines: the readings the organization's devices sent in each
 * of the last 60 minutes (by arrival; the last one the minute under way), zeros included, oldest
 * first; readings older than the hour and another organization's readings are not counted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const MINUTE = 60_000;

for (const engine of ENGINES) {
  describe(`telemetry ingest rate [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let organizationId: string;

    before(async () => {
      t = await startTestPlatform(engine);
      organizationId = await organizationIdOf(t.platform, t.org);
      await testProduct(t.platform, organizationId);
      ({ token } = await ownerSession(t));
    });
    after(async () => {
      await t?.close();
    });

    it('counts readings per minute of arrival over the last hour, the minute under way last', async () => {
      const thisMinute = Math.floor(t.clock.now() / MINUTE) * MINUTE;
      const first = thisMinute - 59 * MINUTE;
      const row = (organization: string, receivedAt: number) => ({
        organization_id: organization,
        device_id: 'dev-rate',
        ts: receivedAt,
        received_at: receivedAt,
        data: '{"t":1}',
      });
      const rows = [
        ...Array.from({ length: 5 }, (_, i) => row(organizationId, thisMinute - MINUTE + i)), // the last whole minute: 5
        ...Array.from({ length: 2 }, () => row(organizationId, thisMinute)), // the minute under way: 2 so far
        ...Array.from({ length: 3 }, () => row(organizationId, first)), // the first minute of the hour: 3
        row(organizationId, first - 1), // just before the hour: not counted
        ...Array.from({ length: 7 }, () => row('another-organization', thisMinute - MINUTE)), // not ours
      ];
      await t.platform.telemetry.store.insertBatch(rows);

      const answer = await t.client().get('/api/v1/fleet/telemetry/rate', { token });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body.minutes.length, 60);
      assert.equal(answer.body.from, new Date(first).toISOString());
      assert.equal(answer.body.to, new Date(thisMinute + MINUTE).toISOString());
      assert.deepEqual(answer.body.minutes[0], { start: new Date(first).toISOString(), readings: 3 });
      assert.deepEqual(answer.body.minutes[58], { start: new Date(thisMinute - MINUTE).toISOString(), readings: 5 });
      assert.deepEqual(answer.body.minutes[59], { start: new Date(thisMinute).toISOString(), readings: 2 });
      assert.equal(
        answer.body.minutes.reduce((sum: number, m: { readings: number }) => sum + m.readings, 0),
        10,
      );
    });

    it('is refused without a session', async () => {
      assert.equal((await t.client().get('/api/v1/fleet/telemetry/rate')).status, 401);
    });
  });
}
