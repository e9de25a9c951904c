/**
 * Consumer privacy end to end on both engines (ETSI EN 303 645 6.1): a product's declaration read
 * before claiming; only declared values of purposes in force are stored and streamed; the owner's
 * consent to an optional purpose starts its collection and withdrawing it stops it at once; a
 * required purpose cannot be withdrawn; consents lapse with the owner; all of it audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { insertConsumer, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { openLiveStream } from '../testing/live-stream.js';
import { connectDevice, eventually, presenceOnline } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';

const DECLARATION = {
  senses: ['temperature', 'motion'],
  purposes: [
    { id: 'operation', description: 'Keep the room at the temperature you set', required: true, telemetry: ['temperature'] },
    { id: 'analytics', description: 'Learn when the room is used, to heat it ahead of time', required: false, telemetry: ['motion'] },
  ],
};

for (const engine of ENGINES) {
  describe(`consumer privacy: declarations, consents, what is stored [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let operator: string;
    let org: string;
    let product: string;
    let plainProduct: string;
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];
    const tokens: Record<string, string> = {};
    const api = () => t.client();
    const as = (who: string) => ({ token: tokens[who]! });

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0 }, auth: { loginRateLimitPerMinute: 10_000 } });
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org, 'Thermostat');
      plainProduct = await testProduct(t.platform, org, 'Plain sensor');
      devices.push(await provisionTestDevice(t.platform, org, product, 'PRIV-0'));
      devices.push(await provisionTestDevice(t.platform, org, plainProduct, 'PRIV-1'));
      ({ token: operator } = await ownerSession(t));
      for (const name of ['alice', 'bob']) tokens[name] = await signIn(t, await insertConsumer(t, `${name}@example.com`, STRONG_PASSWORD));
      for (const d of devices) {
        const client = await connectDevice(t.server.mqtt!.port, t.ca, d, d.id);
        clients.push(client);
        await presenceOnline(t.platform.db, d.id);
      }
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    async function claim(who: string, index: number) {
      const d = devices[index]!;
      const code = (await api().post('/api/v1/devices/claim-codes', { deviceIds: [d.id] }, { token: operator })).body.codes[0].code;
      await clients[index]!.publishAsync(`d/${d.id}/binding/presence`, '{}', { qos: 1 });
      const res = await api().post('/api/v1/my/devices/claim', { code }, as(who));
      assert.equal(res.status, 201, res.text);
    }
    const publish = (index: number, values: Record<string, unknown>) =>
      clients[index]!.publishAsync(`d/${devices[index]!.id}/telemetry`, JSON.stringify({ values }), { qos: 1 });
    async function stored(who: string, index: number): Promise<Record<string, unknown>[]> {
      const res = await api().get(`/api/v1/my/devices/${devices[index]!.id}/telemetry?from=0&to=${Date.now() + 60_000}`, as(who));
      assert.equal(res.status, 200, res.text);
      return res.body.readings.map((r: { values: Record<string, unknown> }) => r.values);
    }

    it('an operator declares what a product collects and why; a malformed declaration is refused', async () => {
      const bad = await api().put(
        `/api/v1/products/${product}/privacy`,
        { senses: [], purposes: [DECLARATION.purposes[0], DECLARATION.purposes[0]] },
        { token: operator },
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'binding.privacy_invalid');
      const badName = await api().put(
        `/api/v1/products/${product}/privacy`,
        { senses: [], purposes: [{ ...DECLARATION.purposes[0], telemetry: ['not a name'] }] },
        { token: operator },
      );
      assert.equal(badName.body.error.code, 'binding.privacy_invalid');
      const ok = await api().put(`/api/v1/products/${product}/privacy`, DECLARATION, { token: operator });
      assert.equal(ok.status, 200, ok.text);
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'product.privacy_declared', targetId: product });
      assert.equal(entries.length, 1);
    });

    it('a consumer reads the declaration before claiming; an unknown product is 404', async () => {
      const read = await api().get(`/api/v1/my/products/${product}/privacy`, as('alice'));
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.declared, true);
      assert.deepEqual(
        read.body.purposes.map((p: { id: string; required: boolean }) => [p.id, p.required]),
        [
          ['operation', true],
          ['analytics', false],
        ],
      );
      assert.equal((await api().get(`/api/v1/my/products/${plainProduct}/privacy`, as('alice'))).body.declared, false);
      assert.equal((await api().get('/api/v1/my/products/no-such-product/privacy', as('alice'))).status, 404);
    });

    it('stores and streams only the values of purposes in force; consent starts an optional one, withdrawal stops it at once', async () => {
      await claim('alice', 0);
      const d = devices[0]!;
      const stream = await openLiveStream(t.server.port, t.ca, `/api/v1/my/devices/${d.id}/live`, tokens.alice!);
      assert.equal(stream.status, 200);
      await eventually(() => stream.events.length > 0, 5000, 'stream open');

      await publish(0, { temperature: 20, motion: 1, secret: 'x' });
      assert.deepEqual(await stored('alice', 0), [{ temperature: 20 }]);
      await eventually(() => stream.events.some((e) => e.event === 'telemetry'), 5000, 'telemetry streamed');
      assert.deepEqual(stream.events.find((e) => e.event === 'telemetry')!.data.readings[0].values, { temperature: 20 });

      // Only undeclared or unconsented values: acknowledged, nothing stored.
      const dropped = t.server.mqtt!.stats.privacyDropped;
      await publish(0, { motion: 5, secret: 'y' });
      assert.equal(t.server.mqtt!.stats.privacyDropped, dropped + 1);

      const granted = await api().put(`/api/v1/my/devices/${d.id}/consents`, { analytics: true }, as('alice'));
      assert.equal(granted.status, 200, granted.text);
      assert.deepEqual(granted.body.collected, ['motion', 'temperature']);
      await publish(0, { temperature: 21, motion: 2 });
      const withdrawn = await api().put(`/api/v1/my/devices/${d.id}/consents`, { analytics: false }, as('alice'));
      assert.deepEqual(withdrawn.body.collected, ['temperature']);
      await publish(0, { temperature: 22, motion: 3 });
      assert.deepEqual(await stored('alice', 0), [{ temperature: 20 }, { temperature: 21, motion: 2 }, { temperature: 22 }]);
      stream.close();

      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.consent_changed', targetId: d.id });
      assert.deepEqual(
        entries.map((e) => e.details.decisions),
        [{ analytics: false }, { analytics: true }],
      );
    });

    it('refuses to withdraw a required purpose or decide an unknown one; only the owner decides', async () => {
      const d = devices[0]!;
      const required = await api().put(`/api/v1/my/devices/${d.id}/consents`, { operation: false }, as('alice'));
      assert.equal(required.status, 409);
      assert.equal(required.body.error.code, 'binding.purpose_required');
      const unknown = await api().put(`/api/v1/my/devices/${d.id}/consents`, { marketing: true }, as('alice'));
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.code, 'binding.purpose_unknown');
      // Bob has no standing on the device: the same 404 as a device that does not exist.
      assert.equal((await api().put(`/api/v1/my/devices/${d.id}/consents`, { analytics: true }, as('bob'))).status, 404);
      assert.equal((await api().get(`/api/v1/my/devices/${d.id}/privacy`, as('bob'))).status, 404);
    });

    it('a product that declares nothing keeps every value; consents lapse when the owner changes', async () => {
      await claim('alice', 1);
      await publish(1, { anything: 1, at: 'all' });
      assert.deepEqual(await stored('alice', 1), [{ anything: 1, at: 'all' }]);

      const d = devices[0]!;
      assert.equal((await api().put(`/api/v1/my/devices/${d.id}/consents`, { analytics: true }, as('alice'))).status, 200);
      assert.equal((await api().delete(`/api/v1/my/devices/${d.id}`, as('alice'))).status, 200);
      await claim('bob', 0);
      const privacy = await api().get(`/api/v1/my/devices/${d.id}/privacy`, as('bob'));
      assert.equal(privacy.status, 200, privacy.text);
      assert.deepEqual(
        privacy.body.purposes.map((p: { id: string; granted: boolean }) => [p.id, p.granted]),
        [
          ['operation', true],
          ['analytics', false],
        ],
      );
      assert.deepEqual(privacy.body.collected, ['temperature']);
    });
  });
}
