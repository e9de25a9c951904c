import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { cliActor } from '../../accounts/roles.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import { provisionTestDevice, type TestDevice } from '../../testing/devices.js';
import { ENGINES } from '../../testing/engines.js';
import { closed, connectDevice, eventually, inbox } from '../../testing/mqtt.js';

/** A batch of `n` readings, each `pad` characters of text. */
const batch = (n: number, pad = 0) =>
  JSON.stringify({ batch: Array.from({ length: n }, (_, i) => ({ values: { i, ...(pad ? { text: 'x'.repeat(pad) } : {}) } })) });

for (const engine of ENGINES) {
  describe(`per-device telemetry limits at the broker [${engine.engine}]`, { skip: engine.skip }, () => {
    const s = useBrokerSuite(
      engine,
      {
        publishesPerSecond: 1000,
        publishBurst: 1000,
        readingsPerSecond: 2000,
        readingsBurst: 1000,
        bytesPerSecond: 64 * 1024,
        bytesBurst: 64 * 1024,
      },
      'TL',
    );

    async function connectAs(d: TestDevice): Promise<MqttClient> {
      const client = await connectDevice(s.port, s.t.ca, d, d.id);
      s.clients.push(client);
      return client;
    }

    it('attack: a device sending batches of 1,000 readings as fast as it may stores no more than its daily quota, is told why, and its neighbour goes on', async () => {
      const actor = cliActor(s.org, 'test');
      const product = await s.t.platform.devices.service.createProduct(actor, { name: 'Quota 5000', telemetryDailyReadings: 5000 });
      const attacker = await provisionTestDevice(s.t.platform, s.org, product.id, 'TL-ATTACKER');
      const neighbour = await provisionTestDevice(s.t.platform, s.org, product.id, 'TL-NEIGHBOUR');
      const client = await connectAs(attacker);
      const heard = inbox(client);
      await client.subscribeAsync(`d/${attacker.id}/errors`, { qos: 0 });
      // Every message is acknowledged (the refused ones too: resending them cannot succeed today).
      await Promise.all(Array.from({ length: 12 }, () => client.publishAsync(`d/${attacker.id}/telemetry`, batch(1000), { qos: 1 })));
      assert.equal(await s.stored(attacker.id), 5000, 'five whole batches stored, none beyond the quota');
      await eventually(() => heard.length === 7, 5000, 'an error reply for each refused batch');
      assert.deepEqual(new Set(heard.map((m) => m.body.code)), new Set(['telemetry.quota_exceeded']));
      assert.match(heard[0]!.body.message, /5000 of 5000 readings stored today/);
      assert.equal(client.connected, true, 'over the quota is not a reason to disconnect');

      const other = await connectAs(neighbour);
      await other.publishAsync(`d/${neighbour.id}/telemetry`, batch(10), { qos: 1 });
      assert.equal(await s.stored(neighbour.id), 10, 'the neighbour under the same product has its own allowance');
      assert.ok(s.t.server.mqtt!.stats.quotaRefused >= 7);
    });

    it('holds the PUBACKs of a device sending more readings per second than it may, and stores them all', async () => {
      const d = await s.device();
      const client = await connectAs(d);
      const started = Date.now();
      await Promise.all(Array.from({ length: 6 }, () => client.publishAsync(`d/${d.id}/telemetry`, batch(1000), { qos: 1 })));
      const elapsed = Date.now() - started;
      // 6,000 readings at 2,000 a second after a burst of 1,000: at least 2.5 s.
      assert.ok(elapsed >= 2300, `6,000 readings acknowledged in ${elapsed} ms`);
      assert.equal(await s.stored(d.id), 6000);
    });

    it('slows a device keeping many large batches in flight to its rate instead of disconnecting it', async () => {
      const d = await s.device();
      const client = await connectAs(d);
      // 22 batches of 1,000 in flight: 10.5 s of readings beyond the burst. Were they all charged as
      // they arrive, the last would be more than 10 s behind and the device disconnected.
      const disconnected = closed(client).then(() => assert.fail('the broker disconnected the device'));
      await Promise.race([
        Promise.all(Array.from({ length: 22 }, () => client.publishAsync(`d/${d.id}/telemetry`, batch(1000), { qos: 1 }))),
        disconnected,
      ]);
      assert.equal(client.connected, true);
      assert.equal(await s.stored(d.id), 22_000);
    });

    it('holds the PUBACKs of a device sending more payload bytes per second than it may', async () => {
      const d = await s.device();
      const client = await connectAs(d);
      const payload = batch(60, 250); // about 17 KB, 60 readings
      assert.ok(payload.length > 16_500);
      const started = Date.now();
      await Promise.all(Array.from({ length: 12 }, () => client.publishAsync(`d/${d.id}/telemetry`, payload, { qos: 1 })));
      const elapsed = Date.now() - started;
      // About 200 KB at 64 KiB a second after a burst of 64 KiB: at least 2 s.
      assert.ok(elapsed >= 1800, `12 messages of ${payload.length} bytes acknowledged in ${elapsed} ms`);
      assert.equal(await s.stored(d.id), 720);
    });
  });
}
