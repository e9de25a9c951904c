/**
 * The ingest path's cache of what each device may store (telemetry/collection.ts), on the real
 * platform and broker, both engines, counting the lookups the filter makes of the real
 * PrivacyService (through a counter handed to it in place of the service): a product whose answer does not depend on the device costs one lookup per
 * TTL for all its devices however many messages they send; a product with an optional purpose, one
 * per device per TTL; a declaration or consent changed on this node is applied to the very next
 * message, not after the TTL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { cliActor } from '../accounts/roles.js';
import { insertConsumer, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { connectDevice, presenceOnline } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';

const MESSAGES = 20;
const OPERATION = { id: 'operation', description: 'Keep the room at the temperature you set', required: true };
const declaration = (telemetry: string[]) => ({ senses: ['temperature', 'motion'], purposes: [{ ...OPERATION, telemetry }] });
const WITH_ANALYTICS = {
  senses: ['temperature', 'motion'],
  purposes: [
    { ...OPERATION, telemetry: ['temperature'] },
    { id: 'analytics', description: 'Learn when the room is used', required: false, telemetry: ['motion'] },
  ],
};

for (const engine of ENGINES) {
  describe(`collection rules cached on the ingest path [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let consumer: string;
    let org: string;
    let product: string;
    /** Three devices of a product without optional purposes, then one of a product with one (index 3). */
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];
    /** Lookups of the real PrivacyService: by product, and by device. */
    const lookups = { product: 0, devices: new Map<string, number>() };
    const deviceLookups = () => [...lookups.devices.values()].reduce((a, b) => a + b, 0);

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0 }, auth: { loginRateLimitPerMinute: 10_000 } });
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org, 'Thermostat');
      const analyticProduct = await testProduct(t.platform, org, 'Learning thermostat');
      await t.platform.binding.privacy.declare(cliActor(org, 'test'), product, declaration(['temperature']));
      await t.platform.binding.privacy.declare(cliActor(org, 'test'), analyticProduct, WITH_ANALYTICS);
      for (let i = 0; i < 3; i++) devices.push(await provisionTestDevice(t.platform, org, product, `CACHE-${i}`));
      devices.push(await provisionTestDevice(t.platform, org, analyticProduct, 'CACHE-LEARNING'));
      for (const d of devices) clients.push(await connectDevice(t.server.mqtt!.port, t.ca, d, d.id));
      ({ token } = await ownerSession(t));
      consumer = await signIn(t, await insertConsumer(t, 'alice@example.com', STRONG_PASSWORD));
      // The filter asks the real PrivacyService through a counter (the service's own views call it too: not counted).
      const privacy = t.platform.binding.privacy;
      t.platform.telemetry.collection.use({
        productNames: (organizationId, productId) => {
          lookups.product++;
          return privacy.productNames(organizationId, productId);
        },
        allowedNames: (deviceId, organizationId) => {
          lookups.devices.set(deviceId, (lookups.devices.get(deviceId) ?? 0) + 1);
          return privacy.allowedNames(deviceId, organizationId);
        },
      });
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    /** Each device (the first three unless told) publishes `count` messages (QoS 1: each acknowledged once stored). */
    const publishAll = (values: Record<string, unknown>, count = 1, indexes = [0, 1, 2]) =>
      Promise.all(
        indexes.map(async (i) => {
          for (let n = 0; n < count; n++)
            await clients[i]!.publishAsync(`d/${devices[i]!.id}/telemetry`, JSON.stringify({ values }), { qos: 1 });
        }),
      );
    async function stored(index: number, as = token): Promise<Record<string, unknown>[]> {
      const res = await t
        .client()
        .get(`/api/v1/devices/${devices[index]!.id}/telemetry?from=0&to=${t.clock.now() + 60_000}&limit=1000`, { token: as });
      assert.equal(res.status, 200, res.text);
      return res.body.readings.map((r: { values: Record<string, unknown> }) => r.values);
    }

    it('looks a product without optional purposes up once for all its devices, and again once older than the TTL', async () => {
      await publishAll({ temperature: 20, motion: 1 }, MESSAGES);
      assert.deepEqual({ product: lookups.product, devices: deviceLookups() }, { product: 1, devices: 0 }, `${MESSAGES * 3} messages`);
      assert.deepEqual((await stored(0)).at(-1), { temperature: 20 }, 'only the declared value is stored');
      t.clock.advance(10_001);
      await publishAll({ temperature: 21 }, 5);
      assert.deepEqual({ product: lookups.product, devices: deviceLookups() }, { product: 2, devices: 0 });
    });

    it('applies a declaration changed on this node to the next message, with one new lookup', async () => {
      const before = lookups.product;
      await t.platform.binding.privacy.declare(cliActor(org, 'test'), product, declaration(['temperature', 'motion']));
      await publishAll({ temperature: 22, motion: 3 }, 5);
      assert.equal(lookups.product, before + 1);
      for (let i = 0; i < 3; i++) assert.deepEqual((await stored(i)).at(-1), { temperature: 22, motion: 3 });
    });

    it("looks a device whose owner's consents decide up once per TTL, and applies a consent changed here to the next message", async () => {
      const d = devices[3]!;
      const code = (await t.client().post('/api/v1/devices/claim-codes', { deviceIds: [d.id] }, { token })).body.codes[0].code;
      await presenceOnline(t.platform.db, d.id);
      await clients[3]!.publishAsync(`d/${d.id}/binding/presence`, '{}', { qos: 1 });
      assert.equal((await t.client().post('/api/v1/my/devices/claim', { code }, { token: consumer })).status, 201);
      const consent = async (analytics: boolean) =>
        assert.equal((await t.client().put(`/api/v1/my/devices/${d.id}/consents`, { analytics }, { token: consumer })).status, 200);
      const last = async () => (await stored(3)).at(-1);

      await publishAll({ temperature: 20, motion: 1 }, MESSAGES, [3]);
      assert.equal(lookups.devices.get(d.id), 1, `${MESSAGES} messages, one lookup`);
      assert.deepEqual(await last(), { temperature: 20 }, 'no consent to analytics yet');
      await consent(true);
      await publishAll({ temperature: 21, motion: 2 }, 5, [3]);
      assert.deepEqual(await last(), { temperature: 21, motion: 2 });
      await consent(false);
      await publishAll({ temperature: 22, motion: 3 }, 5, [3]);
      assert.deepEqual(await last(), { temperature: 22 });
      assert.equal(lookups.devices.get(d.id), 3, 'one lookup after each change');
    });
  });
}
