/**
 * Gateways over real mutual TLS (issue 14), on both engines: a gateway registers children over
 * its own connection and relays their telemetry, state and commands, which land under each
 * child; an operator moves a child and the old gateway is cut at once; the cap, the registration
 * rate and the refusals (not a gateway, someone else's device) answer with their codes; and
 * mosquitto_pub with a gateway's certificate cannot speak for a device that is not its child.
 */
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { cliActor } from '../../accounts/roles.js';
import type { ChildView } from '../../devices/gateways.js';
import { ENGINES } from '../../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../../testing/devices.js';
import { connectDevice, eventually, granted, inbox, mosquittoClient, presenceOnline, settle } from '../../testing/mqtt.js';
import { createOperator, signIn } from '../../testing/accounts.js';
import { Openssl } from '../../testing/openssl.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

const CAP = 3;
const RATE = 5;

for (const engine of ENGINES) {
  describe(`gateways and their children over mutual TLS [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let product: string;
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];
    const ssl = new Openssl();
    let next = 0;

    before(async () => {
      t = await startTestPlatform(engine, {
        mqtt: { port: 0, watchIntervalMs: 100, maxChildrenPerGateway: CAP, gatewayRegistrationsPerMinute: RATE },
      });
      const org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      // Certificates first: signing in moves the platform clock ahead of the wall clock.
      for (let i = 0; i < 13; i++) devices.push(await provisionTestDevice(t.platform, org, product, `GW-${i}`));
      ({ token } = await ownerSession(t));
      ssl.write('ca.pem', t.ca);
    });
    after(async () => {
      for (const c of clients) c.end(true);
      ssl.close();
      await t?.close();
    });

    const api = () => t.client();
    const stored = (deviceId: string) => t.platform.telemetry.store.count(deviceId);

    /** The next provisioned device, made a gateway by the operator unless `plain`. */
    async function device(plain = false): Promise<TestDevice> {
      const d = devices[next++]!;
      if (!plain) {
        const made = await api().request('PUT', `/api/v1/devices/${d.id}/gateway`, { body: { enabled: true }, token });
        assert.equal(made.status, 200, made.text);
        assert.equal(made.body.gateway, true);
      }
      return d;
    }

    async function online(d: TestDevice) {
      const client = await connectDevice(t.server.mqtt!.port, t.ca, d, d.id);
      clients.push(client);
      const messages = inbox(client);
      await client.subscribeAsync([`d/${d.id}/gateway/+`, `d/${d.id}/errors`], { qos: 1 });
      await presenceOnline(t.platform.db, d.id);
      let request = 0;
      /** Publishes a registration and waits for its answer on gateway/result. */
      const register = async (serial: string, extra: Record<string, unknown> = { productId: product }) => {
        const id = `r${++request}`;
        await client.publishAsync(`d/${d.id}/gateway/register`, JSON.stringify({ id, serial, ...extra }), { qos: 1 });
        await eventually(() => messages.some((m) => m.topic.endsWith('/gateway/result') && m.body.id === id), 3000, `answer to ${id}`);
        return messages.find((m) => m.topic.endsWith('/gateway/result') && m.body.id === id)!.body;
      };
      /** The error replies the gateway got for `topic`. */
      const refusals = (topic: string) => messages.filter((m) => m.topic === `d/${d.id}/errors` && m.body.topic === topic);
      return { client, messages, register, refusals };
    }

    it('a gateway registers children, relays their telemetry and state under each child, and runs a command for one', async () => {
      const gw = await device();
      const { client, messages, register } = await online(gw);
      const first = await register('CHILD-A1');
      assert.equal(first.ok, true, JSON.stringify(first));
      const child = first.child.deviceId as string;
      assert.notEqual(child, gw.id);
      assert.deepEqual(first.child, { deviceId: child, serial: 'CHILD-A1', productId: product, status: 'active' });
      // Registering it again (after a gateway restart) answers the same child.
      assert.deepEqual((await register('CHILD-A1')).child, first.child);

      assert.deepEqual(await granted(client, [`d/${child}/commands/+`, `d/${child}/state/desired`]), [1, 1]);
      await client.publishAsync(`d/${child}/telemetry`, JSON.stringify({ values: { temperature: 19.5 } }), { qos: 1 });
      // Acknowledged once committed, under the child: nothing under the gateway.
      assert.equal(await stored(child), 1);
      assert.equal(await stored(gw.id), 0);
      const readings = await api().get(`/api/v1/devices/${child}/telemetry`, { token });
      assert.equal(readings.status, 200, readings.text);
      assert.deepEqual(
        readings.body.readings.map((r: { values: unknown }) => r.values),
        [{ temperature: 19.5 }],
      );

      await client.publishAsync(`d/${child}/state/reported`, JSON.stringify({ state: { battery: 88 } }), { qos: 1 });
      const state = await api().get(`/api/v1/devices/${child}/state`, { token });
      assert.deepEqual(state.body.reported.state, { battery: 88 });
      const history = await api().get(`/api/v1/devices/${child}/state/history?kind=reported`, { token });
      assert.equal(history.body.changes?.[0]?.actor ?? history.body[0]?.actor, `gateway:${gw.id}`, history.text);

      client.on('message', (topic) => {
        if (topic.startsWith(`d/${child}/commands/`))
          void client.publishAsync(`${topic}/result`, JSON.stringify({ status: 'ok', result: { blinked: true } }), { qos: 1 });
      });
      const sent = await api().post(`/api/v1/devices/${child}/commands`, { name: 'identify' }, { token });
      assert.equal(sent.status, 202, sent.text);
      const done = await api().get(`/api/v1/devices/${child}/commands/${sent.body.id}?waitMs=5000`, { token });
      assert.equal(done.body.status, 'succeeded', done.text);
      assert.deepEqual(done.body.result, { blinked: true });
      assert.ok(messages.some((m) => m.topic === `d/${child}/commands/${sent.body.id}`));

      const children = await api().get(`/api/v1/devices/${gw.id}/children`, { token });
      assert.deepEqual(children.body.children, [first.child]);
      const audit = await api().get(`/api/v1/audit?action=device.registered&targetId=${child}`, { token });
      assert.equal(audit.body.entries.length, 1, audit.text);
      assert.deepEqual(audit.body.entries[0].actor, { type: 'device', id: gw.id });
      assert.equal(audit.body.entries[0].details.via_gateway, gw.id);
      assert.ok(t.server.mqtt!.stats.gatewayRelayed >= 3);
    });

    it('an operator moves a child to another gateway: the old one receives nothing more and its very next publish is refused', async () => {
      const oldGw = await device();
      const newGw = await device();
      const before = await online(oldGw);
      const after = await online(newGw);
      const child = (await before.register('CHILD-M1')).child.deviceId as string;
      assert.deepEqual(await granted(before.client, [`d/${child}/commands/+`]), [1]);
      await before.client.publishAsync(`d/${child}/telemetry`, '{"values":{"n":1}}', { qos: 1 });
      assert.equal(await stored(child), 1);

      const moved = await api().post(`/api/v1/devices/${newGw.id}/children`, { deviceId: child }, { token });
      assert.equal(moved.status, 200, moved.text);
      // Cut before the API answered: the old gateway is told, and its subscription on the child is gone.
      await eventually(
        () => before.messages.some((m) => m.topic === `d/${oldGw.id}/gateway/detached` && m.body.deviceId === child),
        2000,
        'detached notice',
      );
      // The new gateway speaks for it at once.
      assert.deepEqual(await granted(after.client, [`d/${child}/commands/+`]), [1]);
      const sent = await api().post(`/api/v1/devices/${child}/commands`, { name: 'ping' }, { token });
      assert.equal(sent.status, 202, sent.text);
      await eventually(
        () => after.messages.some((m) => m.topic === `d/${child}/commands/${sent.body.id}`),
        3000,
        'command at the new gateway',
      );
      await settle(300);
      assert.ok(!before.messages.some((m) => m.topic.startsWith(`d/${child}/commands/`)), 'the old gateway received nothing more');
      // Nor may it subscribe again.
      assert.deepEqual(await granted(before.client, [`d/${child}/commands/+`]), [128]);

      // Refused, acknowledged and answered (a message queued before the cut must not become a reconnect loop), never stored.
      await before.client.publishAsync(`d/${child}/telemetry`, '{"values":{"n":2}}', { qos: 1 });
      await eventually(() => before.refusals(`d/${child}/telemetry`).length === 1, 2000, 'error reply');
      assert.equal(before.refusals(`d/${child}/telemetry`)[0]!.body.code, 'gateway.not_a_child');
      assert.equal(await stored(child), 1, 'nothing stored from the old gateway');
      assert.equal(before.client.connected, true);
      await after.client.publishAsync(`d/${child}/telemetry`, '{"values":{"n":3}}', { qos: 1 });
      assert.equal(await stored(child), 2);
      const audit = await api().get(`/api/v1/audit?action=device.gateway_child_moved&targetId=${child}`, { token });
      assert.equal(audit.body.entries[0]?.details.fromGatewayId, oldGw.id, audit.text);
    });

    it('a detached child is cut at once; only an operator attaches it again, a gateway cannot claim it', async () => {
      const gw = await device();
      const { client, messages, register } = await online(gw);
      const child = (await register('CHILD-X1')).child.deviceId as string;
      const detached = await api().delete(`/api/v1/devices/${gw.id}/children/${child}`, { token });
      assert.equal(detached.status, 200, detached.text);
      await eventually(() => messages.some((m) => m.topic === `d/${gw.id}/gateway/detached`), 2000, 'detached notice');
      const again = await register('CHILD-X1');
      assert.deepEqual([again.ok, again.error?.code], [false, 'gateway.child_taken']);
      const attached = await api().post(`/api/v1/devices/${gw.id}/children`, { deviceId: child }, { token });
      assert.equal(attached.status, 200, attached.text);
      await client.publishAsync(`d/${child}/telemetry`, '{"values":{"back":true}}', { qos: 1 });
      assert.equal(await stored(child), 1);
    });

    it('an MQTT 5 gateway is told 0x87 in the PUBACK for a device that is not its child, and keeps its session', async () => {
      const gw = await device();
      const client = await connectDevice(t.server.mqtt!.port, t.ca, gw, gw.id, { protocolVersion: 5 });
      clients.push(client);
      const stranger = devices.find((d) => d.serial === 'GW-0')!;
      await assert.rejects(client.publishAsync(`d/${stranger.id}/telemetry`, '{"values":{"x":1}}', { qos: 1 }), /0x87|Not authorized|135/i);
      await settle(200);
      assert.equal(client.connected, true);
      assert.equal(await stored(stranger.id), 0);
    });

    it('a child disabled by an operator is cut from its gateway at once, and held again once back in service', async () => {
      const gw = await device();
      const { client, register, refusals } = await online(gw);
      const child = (await register('CHILD-D1')).child.deviceId as string;
      const disabled = await api().post(`/api/v1/devices/${child}/disable`, undefined, { token });
      assert.equal(disabled.status, 200, disabled.text);
      await client.publishAsync(`d/${child}/telemetry`, '{"values":{"n":1}}', { qos: 1 });
      await eventually(() => refusals(`d/${child}/telemetry`).length === 1, 2000, 'error reply');
      assert.equal(refusals(`d/${child}/telemetry`)[0]!.body.code, 'gateway.not_a_child');
      assert.equal(await stored(child), 0);
      // Back in service: its gateway speaks for it again at once.
      const activated = await api().post(`/api/v1/devices/${child}/activate`, undefined, { token });
      assert.equal(activated.status, 200, activated.text);
      await client.publishAsync(`d/${child}/telemetry`, '{"values":{"n":2}}', { qos: 1 });
      assert.equal(await stored(child), 1);
    });

    it(`bounds children per gateway (${CAP}) and registrations per minute (${RATE}), with their codes`, async () => {
      const gw = await device();
      const { register } = await online(gw);
      for (let i = 0; i < CAP; i++) assert.equal((await register(`CAP-${i}`)).ok, true);
      const over = await register('CAP-over');
      assert.deepEqual([over.ok, over.error.code], [false, 'gateway.children_limit']);
      assert.equal((await register('CAP-over-2')).error.code, 'gateway.children_limit');
      const fast = await register('CAP-over-3');
      assert.deepEqual([fast.ok, fast.error.code], [false, 'gateway.registration_rate']);
      // The operator's door is bounded by the cap too.
      const byOperator = await api().post(`/api/v1/devices/${gw.id}/children`, { serial: 'CAP-op', productId: product }, { token });
      assert.equal(byOperator.status, 409, byOperator.text);
      assert.equal(byOperator.body.error.code, 'gateway.children_limit');
    });

    it('a device that is not a gateway cannot register children, nor make itself one; only devices:write makes a gateway', async () => {
      const plain = await device(true);
      const { register } = await online(plain);
      const refused = await register('SNEAKY-1');
      assert.deepEqual([refused.ok, refused.error.code], [false, 'gateway.not_a_gateway']);
      const lookup = await t.platform.devices.service
        .getBySerial(cliActor(plain.organizationId, 'test'), 'SNEAKY-1')
        .catch((e: { code: string }) => e.code);
      assert.equal(lookup, 'resource.not_found', 'nothing was registered');
      const denied = await api().get(`/api/v1/audit?action=device.gateway_child_refused&actorId=${plain.id}`, { token });
      assert.equal(denied.body.entries[0]?.details.reason, 'not_a_gateway', denied.text);

      const auditor = await signIn(t, await createOperator(t, 'gw-auditor@example.com', 'auditor'));
      const forbidden = await api().request('PUT', `/api/v1/devices/${plain.id}/gateway`, { body: { enabled: true }, token: auditor });
      assert.equal(forbidden.status, 403, forbidden.text);
    });

    it('a gateway cannot take over a directly connected device, another gateway’s child, or a gateway', async () => {
      const gw = await device();
      const other = await device();
      const direct = await device(true);
      const theirs = await online(other);
      const theirChild = await theirs.register('THEIRS-1');
      const { register } = await online(gw);
      for (const [serial, why] of [
        [direct.serial, 'direct'],
        ['THEIRS-1', 'other_gateway'],
        [other.serial, 'gateway'],
      ] as const) {
        const answer = await register(serial);
        assert.deepEqual([answer.ok, answer.error.code], [false, 'gateway.child_taken'], serial);
        const audit = await api().get(`/api/v1/audit?action=device.gateway_child_refused&actorId=${gw.id}`, { token });
        assert.ok(
          audit.body.entries.some((e: { details: { reason: string } }) => e.details.reason === why),
          why,
        );
      }
      // The operator cannot attach a directly connected device either.
      const attach = await api().post(`/api/v1/devices/${gw.id}/children`, { deviceId: direct.id }, { token });
      assert.equal(attach.body.error.code, 'gateway.child_taken', attach.text);
      // Still the other gateway's.
      const children = await api().get(`/api/v1/devices/${other.id}/children`, { token });
      assert.deepEqual(children.body.children, [theirChild.child]);
    });

    it('attack: mosquitto_pub with a gateway’s certificate publishing for a device that is not its child is refused, nothing stored or delivered', async () => {
      const gw = await device();
      const other = await device();
      const owner = await online(other);
      const victim = (await owner.register('VICTIM-1')).child.deviceId as string;
      // The victim's real gateway listens on the victim's topics: a spoofed message must not reach it either.
      assert.deepEqual(await granted(owner.client, [`d/${victim}/#`]), [1]);
      const direct = devices.find((d) => d.serial === 'GW-0')!;
      ssl.write('gw.pem', gw.cert);
      ssl.write('gw.key', gw.key);
      const pub = (topic: string) =>
        mosquittoClient('mosquitto_pub', { port: t.server.mqtt!.port, dir: ssl.dir, name: 'gw', deviceId: gw.id }, [
          '-t',
          topic,
          '-m',
          '{"values":{"spoofed":1}}',
        ]);
      const denied = t.server.mqtt!.stats.aclDenied;
      // Another gateway's child and a directly connected device: refused (acknowledged, answered on the gateway's error topic).
      for (const target of [victim, direct.id]) await pub(`d/${target}/telemetry`);
      assert.equal(t.server.mqtt!.stats.aclDenied, denied + 2);
      // Speaking as the platform on someone else's topic: the connection is closed.
      const platformTopic = await pub(`d/${victim}/commands/c1`);
      assert.notEqual(platformTopic.code, 0, platformTopic.output);
      assert.equal(t.server.mqtt!.stats.aclDenied, denied + 3);
      await settle(300);
      assert.equal(await stored(victim), 0);
      assert.equal(await stored(direct.id), 0);
      assert.ok(
        !owner.messages.some((m) => m.topic.startsWith(`d/${victim}/`) && JSON.stringify(m.body).includes('spoofed')),
        'nothing spoofed reached the victim’s gateway',
      );
      const sub = await mosquittoClient('mosquitto_sub', { port: t.server.mqtt!.port, dir: ssl.dir, name: 'gw', deviceId: gw.id }, [
        '-t',
        `d/${victim}/commands/+`,
        '-C',
        '1',
        '-W',
        '2',
      ]);
      assert.match(sub.output, /All subscription requests were denied/, sub.output);
    });
  });
}

for (const engine of ENGINES) {
  describe(`a gateway's own rates bound what it relays for its children [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let gw: TestDevice;
    let product: string;
    const clients: MqttClient[] = [];

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0, publishesPerSecond: 10, publishBurst: 10 } });
      const org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      gw = await provisionTestDevice(t.platform, org, product, 'RATE-GW');
      await t.platform.devices.gateways.setGateway(cliActor(org, 'test'), gw.id, true);
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    it('three children’s telemetry is charged to the gateway session: 30 QoS 1 messages at 10/s take their time', async () => {
      const children: ChildView[] = [];
      for (let i = 0; i < 3; i++)
        children.push(
          await t.platform.devices.gateways.registerByGateway(await identityOf(t, gw), { serial: `RATE-C${i}`, productId: product }),
        );
      const client = await connectDevice(t.server.mqtt!.port, t.ca, gw, gw.id);
      clients.push(client);
      const started = Date.now();
      // Each child alone is within its own burst of 10; together they are three times the gateway's.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          client.publishAsync(`d/${children[i % 3]!.deviceId}/telemetry`, JSON.stringify({ values: { i } }), { qos: 1 }),
        ),
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1500, `30 messages at 10/s after a burst of 10 acknowledged in ${elapsed} ms`);
      for (const child of children) assert.equal(await t.platform.telemetry.store.count(child.deviceId), 10);
    });
  });
}

/** The gateway's identity as the broker proves it (for calling the service as the broker would). */
async function identityOf(t: TestPlatform, d: TestDevice) {
  return t.platform.devices.identity.fromCertificate(new X509Certificate(d.cert));
}
