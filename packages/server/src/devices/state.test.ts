import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { createOperator, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { closed, connectDevice, eventually, inbox, presenceOnline, settle } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

for (const engine of ENGINES) {
  describe(`device shadow and commands over MQTT [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0, watchIntervalMs: 100 } });
      const org = await organizationIdOf(t.platform, t.org);
      const product = await testProduct(t.platform, org);
      // Certificates first: signing in moves the platform clock ahead of the wall clock, and a
      // certificate's notBefore must not be in the TLS stack's future.
      for (let i = 0; i < 6; i++) devices.push(await provisionTestDevice(t.platform, org, product, `ST-${i}`));
      ({ token } = await ownerSession(t));
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    async function online(d: TestDevice, filters: string[]) {
      const client = await connectDevice(t.server.mqtt!.port, t.ca, d, d.id);
      clients.push(client);
      const messages = inbox(client);
      if (filters.length) await client.subscribeAsync(filters, { qos: 1 });
      // Presence is written just after the CONNACK: commands go to devices the platform sees online.
      await presenceOnline(t.platform.db, d.id);
      return { client, messages };
    }
    const api = () => t.client();

    it('syncs desired state to the device on subscribe and on change, and the report clears the delta', async () => {
      const d = devices[0]!;
      const { client, messages } = await online(d, [`d/${d.id}/state/desired`, `d/${d.id}/state/delta`]);
      await eventually(() => messages.length >= 2, 2000, 'initial desired and delta');
      assert.deepEqual(
        messages.slice(0, 2).map((m) => [m.topic.split('/').slice(2).join('/'), m.body]),
        [
          ['state/desired', { version: 0, state: {} }],
          ['state/delta', { version: 0, state: {} }],
        ],
      );

      const patched = await api().patch(
        `/api/v1/devices/${d.id}/state/desired`,
        { state: { led: 'on', config: { interval: 30, mode: 'eco' } } },
        { token },
      );
      assert.equal(patched.status, 200, patched.text);
      assert.equal(patched.body.desired.version, 1);
      await eventually(() => messages.length >= 4, 2000, 'desired v1 pushed');
      assert.deepEqual(messages[3]!.body, { version: 1, state: { led: 'on', config: { interval: 30, mode: 'eco' } } });

      await client.publishAsync(
        `d/${d.id}/state/reported`,
        JSON.stringify({ state: { led: 'on', config: { interval: 30 }, uptime: 12 } }),
        { qos: 1 },
      );
      const state = await api().get(`/api/v1/devices/${d.id}/state`, { token });
      assert.equal(state.status, 200, state.text);
      assert.equal(state.body.reported.version, 1);
      assert.deepEqual(state.body.reported.state, { led: 'on', config: { interval: 30 }, uptime: 12 });
      assert.deepEqual(state.body.delta, { config: { mode: 'eco' } });
      // The device is told what is still missing.
      await eventually(
        () => messages.some((m) => m.topic.endsWith('state/delta') && m.body.state?.config?.mode === 'eco' && !('led' in m.body.state)),
        2000,
        'remaining delta',
      );

      // A merge patch: null deletes.
      await client.publishAsync(`d/${d.id}/state/reported`, JSON.stringify({ state: { config: { mode: 'eco' }, uptime: null } }), {
        qos: 1,
      });
      const synced = await api().get(`/api/v1/devices/${d.id}/state`, { token });
      assert.deepEqual(synced.body.delta, {});
      assert.deepEqual(synced.body.reported.state, { led: 'on', config: { interval: 30, mode: 'eco' } });

      const history = await api().get(`/api/v1/devices/${d.id}/state/history?kind=reported`, { token });
      assert.deepEqual(
        history.body.changes.map((c: { version: number }) => c.version),
        [2, 1],
      );
      assert.deepEqual(history.body.changes[0].change, { config: { mode: 'eco' }, uptime: null });
    });

    it('refuses a desired-state change made against a stale version (409) and an invalid state (400)', async () => {
      const d = devices[1]!;
      const first = await api().patch(`/api/v1/devices/${d.id}/state/desired`, { state: { a: 1 }, version: 0 }, { token });
      assert.equal(first.status, 200, first.text);
      const stale = await api().patch(`/api/v1/devices/${d.id}/state/desired`, { state: { a: 2 }, version: 0 }, { token });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.error.code, 'state.version_conflict');
      const deep = await api().patch(
        `/api/v1/devices/${d.id}/state/desired`,
        { state: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } },
        { token },
      );
      assert.equal(deep.status, 400);
      assert.equal(deep.body.error.code, 'state.invalid');
      const state = await api().get(`/api/v1/devices/${d.id}/state`, { token });
      assert.deepEqual(state.body.desired, { state: { a: 1 }, version: 1, updatedAt: state.body.desired.updatedAt });
      const audit = await api().get('/api/v1/audit?action=device.desired_state_changed', { token });
      assert.ok(audit.body.entries.some((e: { target: { id: string } }) => e.target.id === d.id));
    });

    it('answers a bad state report on the error topic and changes nothing', async () => {
      const d = devices[2]!;
      const { client, messages } = await online(d, [`d/${d.id}/errors`]);
      await client.publishAsync(`d/${d.id}/state/reported`, '{"state":[1,2]}', { qos: 1 });
      await client.publishAsync(`d/${d.id}/state/reported`, '{"led":"on"}', { qos: 1 });
      // A key JSON.parse keeps but merging would turn into a prototype: refused, not silently dropped.
      await client.publishAsync(`d/${d.id}/state/reported`, '{"state":{"led":"on","cfg":{"__proto__":{"admin":true}}}}', { qos: 1 });
      await eventually(() => messages.length >= 3, 2000, 'three error replies');
      assert.deepEqual(
        messages.map((m) => m.body.code),
        ['state.invalid', 'payload.invalid', 'state.invalid'],
      );
      assert.match(messages[2]!.body.message, /__proto__/);
      const state = await api().get(`/api/v1/devices/${d.id}/state`, { token });
      assert.equal(state.body.reported.version, 0);
    });

    it('runs a command: the device gets it, answers, and the operator reads the result', async () => {
      const d = devices[3]!;
      const { client, messages } = await online(d, [`d/${d.id}/commands/+`]);
      client.on('message', (topic, payload) => {
        const body = JSON.parse(payload.toString()) as { name: string; params: { seconds: number } };
        if (body.name === 'blink')
          void client.publishAsync(`${topic}/result`, JSON.stringify({ status: 'ok', result: { blinked: body.params.seconds } }), {
            qos: 1,
          });
      });
      const sent = await api().post(
        `/api/v1/devices/${d.id}/commands`,
        { name: 'blink', params: { seconds: 3 }, timeoutMs: 10_000 },
        { token },
      );
      assert.equal(sent.status, 202, sent.text);
      assert.equal(sent.body.status, 'pending');
      const done = await api().get(`/api/v1/devices/${d.id}/commands/${sent.body.id}?waitMs=5000`, { token });
      assert.equal(done.body.status, 'succeeded', done.text);
      assert.deepEqual(done.body.result, { blinked: 3 });
      assert.equal(messages[0]!.topic, `d/${d.id}/commands/${sent.body.id}`);
      assert.equal(messages[0]!.body.timeoutMs, 10_000);
    });

    it('times a command out, refuses its late answer, and refuses another device answering for it', async () => {
      const d = devices[4]!;
      const intruder = devices[5]!;
      const { client, messages } = await online(d, [`d/${d.id}/commands/+`, `d/${d.id}/errors`]);
      const other = await online(intruder, [`d/${intruder.id}/errors`]);
      const sent = await api().post(`/api/v1/devices/${d.id}/commands`, { name: 'reboot', timeoutMs: 5000 }, { token });
      assert.equal(sent.status, 202, sent.text);
      await eventually(() => messages.length >= 1, 2000, 'command delivered');

      // Another device answering under its own prefix with this command's ID: refused, nothing changes.
      await other.client.publishAsync(`d/${intruder.id}/commands/${sent.body.id}/result`, '{"status":"ok"}', { qos: 1 });
      await eventually(() => other.messages.length >= 1, 2000, 'intruder told');
      assert.equal(other.messages[0]!.body.code, 'command.expired');
      // And under the victim's prefix: the broker drops the intruder.
      const gone = closed(other.client);
      other.client.publish(`d/${d.id}/commands/${sent.body.id}/result`, '{"status":"ok"}', { qos: 1 });
      await gone;
      assert.equal((await api().get(`/api/v1/devices/${d.id}/commands/${sent.body.id}`, { token })).body.status, 'pending');

      t.clock.advance(6000);
      const late = await api().get(`/api/v1/devices/${d.id}/commands/${sent.body.id}`, { token });
      assert.equal(late.body.status, 'timed_out');
      await client.publishAsync(`d/${d.id}/commands/${sent.body.id}/result`, '{"status":"ok"}', { qos: 1 });
      await eventually(() => messages.some((m) => m.body?.code === 'command.expired'), 2000, 'late answer refused');
      assert.equal((await api().get(`/api/v1/devices/${d.id}/commands/${sent.body.id}`, { token })).body.status, 'timed_out');
    });

    it('refuses a command to an offline device (409 device.offline) and to another organization’s device (404)', async () => {
      const d = devices[2]!;
      for (const c of clients) c.end(true);
      await eventually(
        async () =>
          (
            await t.platform.db
              .selectFrom('device_presence')
              .select('connected_since')
              .where('device_id', '=', d.id)
              .executeTakeFirstOrThrow()
          ).connected_since === null,
        2000,
        'offline',
      );
      const offline = await api().post(`/api/v1/devices/${d.id}/commands`, { name: 'reboot' }, { token });
      assert.equal(offline.status, 409);
      assert.equal(offline.body.error.code, 'device.offline');
      const unknown = await api().post('/api/v1/devices/00000000-0000-0000-0000-000000000000/commands', { name: 'reboot' }, { token });
      assert.equal(unknown.status, 404);
      await settle(10);
    });

    it('attack: another organization’s device answers 404 exactly like an unknown one, on every state and command route', async () => {
      const d = devices[3]!;
      const sent = await t.platform.db.selectFrom('device_commands').select(['device_id', 'id']).executeTakeFirstOrThrow();
      await t.platform.accounts.service.createOrganization({ slug: 'state-org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
      const tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', 'state-org-b'));
      const probes = (id: string, commandId: string) => [
        api().get(`/api/v1/devices/${id}/state`, { token: tokenB }),
        api().get(`/api/v1/devices/${id}/state/history`, { token: tokenB }),
        api().patch(`/api/v1/devices/${id}/state/desired`, { state: { led: 'off' } }, { token: tokenB }),
        api().get(`/api/v1/devices/${id}/commands`, { token: tokenB }),
        api().get(`/api/v1/devices/${id}/commands/${commandId}`, { token: tokenB }),
        api().post(`/api/v1/devices/${id}/commands`, { name: 'reboot' }, { token: tokenB }),
      ];
      const onOther = await Promise.all([...probes(d.id, sent.id), ...probes(sent.device_id, sent.id)]);
      const onNobody = await Promise.all(probes('00000000-0000-0000-0000-000000000000', sent.id));
      onOther.forEach((res, i) => {
        const unknown = onNobody[i % onNobody.length]!;
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.error.code, 'resource.not_found');
        assert.equal(res.body.error.message, 'Device was not found');
        assert.equal(unknown.status, 404, unknown.text);
        assert.equal(unknown.body.error.message, res.body.error.message);
      });
      const own = await api().get(`/api/v1/devices/${sent.device_id}/commands`, { token });
      assert.equal(own.status, 200);
      assert.ok(
        own.body.commands.some((c: { id: string }) => c.id === sent.id),
        'its own organization sees the commands',
      );
    });
  });
}
