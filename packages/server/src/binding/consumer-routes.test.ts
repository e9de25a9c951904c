import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { insertConsumer, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { openLiveStream } from '../testing/live-stream.js';
import { connectDevice, eventually, inbox, presenceOnline } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';

for (const engine of ENGINES) {
  describe(`a consumer's devices: roles, IDOR, live state [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let operator: string;
    let org: string;
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];
    const users: Record<string, TestUser & { token: string }> = {};
    const messages = new Map<string, { topic: string; body: any }[]>();
    const api = () => t.client();
    const as = (who: string) => ({ token: users[who]!.token });

    before(async () => {
      t = await startTestPlatform(engine, {
        mqtt: { port: 0, watchIntervalMs: 100 },
        auth: { loginRateLimitPerMinute: 10_000 },
        binding: { maxLiveStreamsPerConsumer: 2, consumerCommands: ['identify'], maxMembersPerDevice: 3 },
      });
      org = await organizationIdOf(t.platform, t.org);
      const product = await testProduct(t.platform, org);
      for (let i = 0; i < 3; i++) devices.push(await provisionTestDevice(t.platform, org, product, `MY-${i}`));
      ({ token: operator } = await ownerSession(t));
      for (const name of ['alice', 'bob', 'carol', 'dave']) {
        const user = await insertConsumer(t, `${name}@example.com`, STRONG_PASSWORD);
        users[name] = { ...user, token: await signIn(t, user) };
      }
      for (const d of devices) {
        const client = await connectDevice(t.server.mqtt!.port, t.ca, d, d.id);
        clients.push(client);
        messages.set(d.id, inbox(client));
        await client.subscribeAsync([`d/${d.id}/binding/reset`, `d/${d.id}/commands/+`, `d/${d.id}/errors`], { qos: 1 });
        await presenceOnline(t.platform.db, d.id);
      }
      // Alice owns device 0 and device 1; bob is a guest on device 0, carol a member.
      for (const d of devices.slice(0, 2)) await claim('alice', d);
      await share(devices[0]!, 'bob', 'guest');
      await share(devices[0]!, 'carol', 'member');
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    async function claim(who: string, d: TestDevice) {
      const code = (await api().post('/api/v1/devices/claim-codes', { deviceIds: [d.id] }, { token: operator })).body.codes[0].code;
      await clients[devices.indexOf(d)]!.publishAsync(`d/${d.id}/binding/presence`, '{}', { qos: 1 });
      const res = await api().post('/api/v1/my/devices/claim', { code }, as(who));
      assert.equal(res.status, 201, res.text);
    }
    async function share(d: TestDevice, who: string, role: string) {
      const invite = await api().post(`/api/v1/my/devices/${d.id}/shares`, { email: users[who]!.email, role }, as('alice'));
      assert.equal(invite.status, 201, invite.text);
      const accepted = await api().post(`/api/v1/my/invitations/${invite.body.id}/accept`, undefined, as(who));
      assert.equal(accepted.status, 200, accepted.text);
    }
    async function refused(who: string, count = 1) {
      const { entries } = await t.platform.audit.query({
        organizationId: org,
        action: 'binding.action_refused',
        actorId: users[who]!.id,
        limit: 500,
      });
      assert.ok(entries.length >= count, `${entries.length} refusals audited for ${who}`);
      return entries;
    }

    it('lists my devices with my role on each', async () => {
      const mine = (who: string) => api().get('/api/v1/my/devices', as(who));
      assert.deepEqual(
        (await mine('alice')).body.devices.map((d: { role: string }) => d.role),
        ['owner', 'owner'],
      );
      assert.deepEqual(
        (await mine('bob')).body.devices.map((d: { id: string; role: string }) => [d.id, d.role]),
        [[devices[0]!.id, 'guest']],
      );
      assert.deepEqual((await mine('dave')).body.devices, []);
      const renamed = await api().patch(`/api/v1/my/devices/${devices[0]!.id}`, { label: 'Kitchen' }, as('carol'));
      assert.equal(renamed.body.label, 'Kitchen');
      // Each member has their own label.
      assert.equal((await api().get(`/api/v1/my/devices/${devices[0]!.id}`, as('alice'))).body.label, null);
    });

    it('a guest cannot escalate: sharing, desired state, commands, transfer, unbind are refused (binding.role_insufficient) and audited', async () => {
      const id = devices[0]!.id;
      const attempts = [
        await api().post(`/api/v1/my/devices/${id}/shares`, { email: 'dave@example.com', role: 'member' }, as('bob')),
        await api().get(`/api/v1/my/devices/${id}/shares`, as('bob')),
        await api().patch(`/api/v1/my/devices/${id}/state/desired`, { state: { led: 'on' } }, as('bob')),
        await api().post(`/api/v1/my/devices/${id}/commands`, { name: 'identify' }, as('bob')),
        await api().post(`/api/v1/my/devices/${id}/transfer`, { email: 'bob@example.com' }, as('bob')),
        await api().delete(`/api/v1/my/devices/${id}`, as('bob')),
        await api().delete(`/api/v1/my/devices/${id}/shares/${users.carol!.id}`, as('bob')),
      ];
      for (const res of attempts) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'binding.role_insufficient');
      }
      await refused('bob', attempts.length);
      // Still a guest, still the owner's device, the member's share intact.
      assert.equal((await api().get(`/api/v1/my/devices/${id}`, as('bob'))).body.role, 'guest');
      assert.equal((await api().get(`/api/v1/my/devices/${id}`, as('alice'))).body.role, 'owner');
      assert.equal((await api().get(`/api/v1/my/devices/${id}/state`, as('bob'))).status, 200);
      // A member controls but does not manage.
      assert.equal((await api().patch(`/api/v1/my/devices/${id}/state/desired`, { state: { led: 'on' } }, as('carol'))).status, 200);
      const transfer = await api().post(`/api/v1/my/devices/${id}/transfer`, { email: 'carol@example.com' }, as('carol'));
      assert.equal(transfer.body.error.code, 'binding.role_insufficient');
      // An invitation is accepted only by the consumer it names.
      const invite = await api().post(`/api/v1/my/devices/${id}/shares`, { email: 'dave@example.com', role: 'guest' }, as('alice'));
      const stolen = await api().post(`/api/v1/my/invitations/${invite.body.id}/accept`, undefined, as('bob'));
      assert.equal(stolen.status, 404);
      assert.equal(stolen.body.error.code, 'binding.invitation_invalid');
      assert.equal((await api().delete(`/api/v1/my/devices/${id}/invitations/${invite.body.id}`, as('alice'))).status, 200);
    });

    it('sends only allowed commands, for members and owners (binding.command_not_allowed otherwise)', async () => {
      const id = devices[0]!.id;
      const sent = await api().post(`/api/v1/my/devices/${id}/commands`, { name: 'identify', params: { seconds: 5 } }, as('carol'));
      assert.equal(sent.status, 202, sent.text);
      await eventually(() => messages.get(id)!.some((m) => m.topic === `d/${id}/commands/${sent.body.id}`), 5000, 'command delivered');
      const outcome = await api().get(`/api/v1/my/devices/${id}/commands/${sent.body.id}`, as('carol'));
      assert.equal(outcome.body.status, 'pending');
      const reboot = await api().post(`/api/v1/my/devices/${id}/commands`, { name: 'factory_reset' }, as('alice'));
      assert.equal(reboot.status, 403);
      assert.equal(reboot.body.error.code, 'binding.command_not_allowed');
      assert.ok((await refused('alice')).some((e) => e.details.code === 'binding.command_not_allowed'));
    });

    it('bounds who a device is shared with, pending invitations included (binding.share_limit_reached)', async () => {
      const id = devices[0]!.id;
      // Owner, guest and member hold 3 places: one more invitation fits, the next does not.
      const fits = await api().post(`/api/v1/my/devices/${id}/shares`, { email: 'x1@example.com', role: 'guest' }, as('alice'));
      assert.equal(fits.status, 201, fits.text);
      const over = await api().post(`/api/v1/my/devices/${id}/shares`, { email: 'x2@example.com', role: 'guest' }, as('alice'));
      assert.equal(over.status, 409);
      assert.equal(over.body.error.code, 'binding.share_limit_reached');
      const listed = await api().get(`/api/v1/my/devices/${id}/shares`, as('alice'));
      assert.deepEqual(listed.body.members.map((m: { role: string }) => m.role).sort(), ['guest', 'member', 'owner']);
      assert.deepEqual(
        listed.body.invitations.map((i: { email: string }) => i.email),
        ['x1@example.com'],
      );
      assert.equal((await api().delete(`/api/v1/my/devices/${id}/invitations/${fits.body.id}`, as('alice'))).status, 200);
    });

    it("IDOR: another consumer's device ID answers the same 404 as a device that does not exist, on every consumer route", async () => {
      const routes: [string, (id: string) => string, unknown?][] = [
        ['GET', (id) => `/api/v1/my/devices/${id}`],
        ['PATCH', (id) => `/api/v1/my/devices/${id}`, { label: 'mine now' }],
        ['DELETE', (id) => `/api/v1/my/devices/${id}`],
        ['POST', (id) => `/api/v1/my/devices/${id}/leave`],
        ['GET', (id) => `/api/v1/my/devices/${id}/state`],
        ['PATCH', (id) => `/api/v1/my/devices/${id}/state/desired`, { state: { led: 'off' } }],
        ['GET', (id) => `/api/v1/my/devices/${id}/telemetry`],
        ['GET', (id) => `/api/v1/my/devices/${id}/telemetry/latest`],
        ['GET', (id) => `/api/v1/my/devices/${id}/presence`],
        ['POST', (id) => `/api/v1/my/devices/${id}/commands`, { name: 'identify' }],
        ['GET', (id) => `/api/v1/my/devices/${id}/commands/${randomUUID()}`],
        ['GET', (id) => `/api/v1/my/devices/${id}/shares`],
        ['POST', (id) => `/api/v1/my/devices/${id}/shares`, { email: 'dave@example.com', role: 'member' }],
        ['DELETE', (id) => `/api/v1/my/devices/${id}/shares/${users.bob!.id}`],
        ['DELETE', (id) => `/api/v1/my/devices/${id}/invitations/${randomUUID()}`],
        ['POST', (id) => `/api/v1/my/devices/${id}/transfer`, { email: 'dave@example.com' }],
        ['GET', (id) => `/api/v1/my/devices/${id}/live`],
      ];
      for (const [method, path, body] of routes) {
        const foreign = await api().request(method, path(devices[0]!.id), { ...as('dave'), ...(body === undefined ? {} : { body }) });
        const missing = await api().request(method, path(randomUUID()), { ...as('dave'), ...(body === undefined ? {} : { body }) });
        assert.equal(foreign.status, 404, `${method} ${path('<id>')}: ${foreign.text}`);
        assert.equal(foreign.body.error.code, 'resource.not_found');
        assert.deepEqual([missing.status, missing.body.error.code], [404, 'resource.not_found'], `${method} ${path('<id>')}`);
      }
      // Nothing changed on the device.
      assert.equal((await api().get(`/api/v1/my/devices/${devices[0]!.id}`, as('alice'))).body.role, 'owner');
      assert.equal((await api().get(`/api/v1/my/devices/${devices[0]!.id}`, as('bob'))).body.role, 'guest');
      // Presence for any role: whether and since when, never the node or protocol (the operators' business).
      const presence = await api().get(`/api/v1/my/devices/${devices[0]!.id}/presence`, as('bob'));
      assert.deepEqual([presence.status, Object.keys(presence.body).sort(), presence.body.online], [200, ['online', 'since'], true]);
      // Operators have their own routes; the consumer routes are for consumers.
      assert.equal((await api().get(`/api/v1/my/devices/${devices[0]!.id}`, { token: operator })).status, 403);
    });

    it("carries telemetry and reported state live, and a removed guest's stream closes within a second", async () => {
      const d = devices[0]!;
      const stream = await openLiveStream(t.server.port, t.ca, `/api/v1/my/devices/${d.id}/live`, users.bob!.token);
      assert.equal(stream.status, 200);
      await eventually(() => stream.events.some((e) => e.event === 'reported'), 5000, 'initial state');
      const device = clients[0]!;
      await device.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { temperature: 21.5 } }), { qos: 1 });
      await device.publishAsync(`d/${d.id}/state/reported`, JSON.stringify({ state: { led: 'on' } }), { qos: 1 });
      await eventually(
        () => stream.events.some((e) => e.event === 'telemetry' && e.data.readings[0].values.temperature === 21.5),
        5000,
        'telemetry',
      );
      await eventually(() => stream.events.some((e) => e.event === 'reported' && e.data.state.led === 'on'), 5000, 'reported');

      const revokedAt = Date.now();
      const revoke = await api().delete(`/api/v1/my/devices/${d.id}/shares/${users.bob!.id}`, as('alice'));
      assert.equal(revoke.status, 200, revoke.text);
      const endedAt = await stream.ended;
      assert.ok(endedAt - revokedAt < 1000, `stream ended ${endedAt - revokedAt} ms after the revoke`);
      assert.deepEqual(stream.events.at(-1), { event: 'end', data: { reason: 'revoked' } });
      const again = await openLiveStream(t.server.port, t.ca, `/api/v1/my/devices/${d.id}/live`, users.bob!.token);
      assert.equal(again.status, 404);
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.share_revoked', targetId: d.id });
      assert.equal(entries[0]!.details.userId, users.bob!.id);
    });

    it('bounds the live streams one consumer holds open (binding.live_stream_limit)', async () => {
      const path = `/api/v1/my/devices/${devices[1]!.id}/live`;
      const open = [
        await openLiveStream(t.server.port, t.ca, path, users.alice!.token),
        await openLiveStream(t.server.port, t.ca, path, users.alice!.token),
      ];
      assert.deepEqual(
        open.map((s) => s.status),
        [200, 200],
      );
      const third = await openLiveStream(t.server.port, t.ca, path, users.alice!.token);
      assert.equal(third.status, 429);
      assert.equal(third.body.error.code, 'binding.live_stream_limit');
      // Closing one frees its place.
      open[0]!.close();
      await eventually(() => t.platform.binding.live.size < 2, 5000, 'stream released');
      const fourth = await openLiveStream(t.server.port, t.ca, path, users.alice!.token);
      assert.equal(fourth.status, 200);
      fourth.close();
      open[1]!.close();
    });

    it("a consumer's sign-out ends their live streams at once; a credential that still holds opens one again", async () => {
      const path = `/api/v1/my/devices/${devices[0]!.id}/live`;
      const stream = await openLiveStream(t.server.port, t.ca, path, users.carol!.token);
      assert.equal(stream.status, 200);
      await eventually(() => stream.events.length > 0, 5000, 'stream open');
      // Carol signs out on another device of hers (a second session).
      const other = await signIn(t, users.carol!);
      const signedOutAt = Date.now();
      assert.equal((await api().post('/api/v1/auth/logout', undefined, { token: other })).status, 200);
      const endedAt = await stream.ended;
      assert.ok(endedAt - signedOutAt < 1000, `stream ended ${endedAt - signedOutAt} ms after the sign-out`);
      assert.deepEqual(stream.events.at(-1), { event: 'end', data: { reason: 'signed_out' } });
      const again = await openLiveStream(t.server.port, t.ca, path, users.carol!.token);
      assert.equal(again.status, 200);
      again.close();
      const gone = await openLiveStream(t.server.port, t.ca, path, other);
      assert.equal(gone.status, 401);
    });

    it('transfers ownership on the invitee’s accept: the old owner and every share lose the device, which resets', async () => {
      const d = devices[0]!;
      // Dave's ownership starts later than the readings sent while alice owned the device (the test clock stands still otherwise).
      t.clock.advance(60_000);
      const offer = await api().post(`/api/v1/my/devices/${d.id}/transfer`, { email: 'dave@example.com' }, as('alice'));
      assert.equal(offer.status, 201, offer.text);
      const waiting = await api().get('/api/v1/my/invitations', as('dave'));
      assert.deepEqual(
        waiting.body.invitations.map((i: { kind: string }) => i.kind),
        ['transfer'],
      );
      const resets = () => messages.get(d.id)!.filter((m) => m.topic === `d/${d.id}/binding/reset`).length;
      const before = resets();
      const accepted = await api().post(`/api/v1/my/invitations/${offer.body.id}/accept`, undefined, as('dave'));
      assert.equal(accepted.status, 200, accepted.text);
      assert.equal(accepted.body.role, 'owner');
      assert.equal((await api().get(`/api/v1/my/devices/${d.id}`, as('alice'))).status, 404);
      assert.equal((await api().get(`/api/v1/my/devices/${d.id}`, as('carol'))).status, 404);
      await eventually(() => resets() > before, 5000, 'reset on transfer');
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.transferred', targetId: d.id });
      assert.equal(entries[0]!.actor.id, users.dave!.id);
      assert.equal(entries[0]!.details.from, users.alice!.id);
    });

    it("deleting a consumer's account unbinds the devices they own and resets them", async () => {
      const d = devices[0]!;
      const resets = () => messages.get(d.id)!.filter((m) => m.topic === `d/${d.id}/binding/reset`).length;
      const before = resets();
      // An invitation waiting for dave ends with his account: a later account with his address must not inherit it.
      const pending = await api().post(
        `/api/v1/my/devices/${devices[1]!.id}/shares`,
        { email: 'dave@example.com', role: 'guest' },
        as('alice'),
      );
      assert.equal(pending.status, 201, pending.text);
      // What the device sent while dave owned it is his: in his export, and erased with his account.
      const earlier = await t.platform.telemetry.store.count(d.id);
      await clients[0]!.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { daves: 1 } }), { qos: 1 });
      await stepUp(t, users.dave!, users.dave!.token);
      const exported = await api().get('/api/v1/me/export', as('dave'));
      assert.equal(exported.status, 200, exported.text);
      const mine = exported.body.sections.telemetry as { deviceId: string; readings: { values: Record<string, unknown> }[] }[];
      assert.deepEqual(
        mine.map((device) => [device.deviceId, device.readings.map((r) => r.values)]),
        [[d.id, [{ daves: 1 }]]],
      );
      const deleted = await api().delete('/api/v1/me', as('dave'));
      assert.equal(deleted.status, 200, deleted.text);
      await eventually(() => resets() > before, 5000, 'reset on account deletion');
      await eventually(
        async () => (await t.platform.telemetry.store.count(d.id)) === earlier,
        5000,
        "dave's telemetry erased, the earlier owner's kept",
      );
      assert.ok(earlier > 0);
      const view = await api().get(`/api/v1/devices/${d.id}/binding`, { token: operator });
      assert.equal(view.body.bound, false);
      assert.deepEqual(view.body.shares, []);
      assert.deepEqual((await api().get(`/api/v1/my/devices/${devices[1]!.id}/shares`, as('alice'))).body.invitations, []);
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.unbound', targetId: d.id });
      assert.equal(entries[0]!.details.reason, 'account_deleted');
    });
  });
}
