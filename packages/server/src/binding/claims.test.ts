import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { claimProofMessage } from '@bulwark/protocol';
import type { MqttClient } from 'mqtt';
import { insertConsumer, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { connectDevice, eventually, inbox } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, STRONG_PASSWORD, type TestPlatform } from '../testing/server.js';

for (const engine of ENGINES) {
  describe(`claiming, unbinding and resetting devices [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let operator: string;
    let org: string;
    let product: string;
    const devices: TestDevice[] = [];
    const clients: MqttClient[] = [];
    const tokens: Record<string, string> = {};
    const ids: Record<string, string> = {};
    const api = () => t.client();

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0, watchIntervalMs: 100 }, auth: { loginRateLimitPerMinute: 10_000 } });
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      // Certificates first: signing in moves the platform clock ahead of the wall clock.
      for (let i = 0; i < 6; i++) devices.push(await provisionTestDevice(t.platform, org, product, `CL-${i}`));
      ({ token: operator } = await ownerSession(t));
      for (const name of ['alice', 'bob', 'mallory']) {
        const user = await insertConsumer(t, `${name}@example.com`, STRONG_PASSWORD);
        ids[name] = user.id;
        tokens[name] = await signIn(t, user);
      }
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    async function issue(deviceId: string): Promise<string> {
      const res = await api().post('/api/v1/devices/claim-codes', { deviceIds: [deviceId] }, { token: operator });
      assert.equal(res.status, 201, res.text);
      const [issued] = res.body.codes;
      // The box label's link: the app's Add a device page on this node's address (no http.publicUrl here), the code in the fragment.
      assert.equal(issued.link, `https://127.0.0.1:${t.server.port}/app/add?product=${product}#code=${issued.code}`);
      assert.equal(issued.productId, product);
      return issued.code;
    }
    const device = new Map<string, { client: MqttClient; messages: { topic: string; body: any }[] }>();
    async function online(d: TestDevice) {
      if (device.has(d.id)) return device.get(d.id)!;
      const client = await connectDevice(t.server.mqtt!.port, t.ca, d, d.id);
      clients.push(client);
      const messages = inbox(client);
      await client.subscribeAsync([`d/${d.id}/binding/reset`, `d/${d.id}/errors`], { qos: 1 });
      device.set(d.id, { client, messages });
      return device.get(d.id)!;
    }
    /** A press of the device's button, reported over MQTT (acknowledged once the platform recorded it). */
    async function press(d: TestDevice) {
      await (await online(d)).client.publishAsync(`d/${d.id}/binding/presence`, '{}', { qos: 1 });
    }
    const claim = (who: string, code: string) => api().post('/api/v1/my/devices/claim', { code }, { token: tokens[who] });
    async function refusals(code: string): Promise<number> {
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.claim_refused', limit: 500 });
      return entries.filter((e) => e.details.code === code).length;
    }

    it('claims a device with its code while a button press on the device holds its claim window open', async () => {
      const [d] = devices;
      const code = await issue(d!.id);
      assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
      await press(d!);
      // Typed in lower case without dashes: the code is normalised before it is compared.
      const res = await claim('alice', code.toLowerCase().replaceAll('-', ''));
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.id, d!.id);
      assert.equal(res.body.role, 'owner');
      const mine = await api().get('/api/v1/my/devices', { token: tokens.alice });
      assert.deepEqual(
        mine.body.devices.map((x: { id: string; role: string }) => [x.id, x.role]),
        [[d!.id, 'owner']],
      );
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.claimed', targetId: d!.id });
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.actor.id, ids.alice);
    });

    it('refuses a claim without presence on the device (binding.presence_required), audited', async () => {
      const d = devices[1]!;
      const code = await issue(d.id);
      const res = await claim('bob', code);
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'binding.presence_required');
      assert.equal(await refusals('binding.presence_required'), 1);
      // The code was right, so it still works once the device proves presence.
      await press(d);
      assert.equal((await claim('bob', code)).status, 201);
    });

    it('refuses a claim once the presence window has closed (binding.presence_expired), audited', async () => {
      const d = devices[2]!;
      const code = await issue(d.id);
      await press(d);
      t.clock.advance(121_000);
      const res = await claim('bob', code);
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'binding.presence_expired');
      assert.equal(await refusals('binding.presence_expired'), 1);
    });

    it('refuses a reused code (binding.claim_code_used), audited', async () => {
      // Alice's code for device 0 was spent by her claim.
      const [d] = devices;
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.claim_code_issued', targetId: d!.id });
      assert.equal(entries.length, 1);
      const code = await issue(devices[3]!.id);
      await press(devices[3]!);
      assert.equal((await claim('bob', code)).status, 201);
      await press(devices[3]!);
      const again = await claim('alice', code);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'binding.claim_code_used');
      assert.equal(await refusals('binding.claim_code_used'), 1);
    });

    it('refuses to claim a device bound to someone else (binding.device_already_bound), even with a fresh code and presence', async () => {
      const [d] = devices;
      const code = await issue(d!.id);
      await press(d!);
      const res = await claim('bob', code);
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'binding.device_already_bound');
      assert.equal(await refusals('binding.device_already_bound'), 1);
      const view = await api().get(`/api/v1/devices/${d!.id}/binding`, { token: operator });
      assert.equal(view.body.owner.userId, ids.alice);
    });

    it('refuses guessed codes and locks the account out after repeated failures (binding.claim_code_invalid, binding.claim_locked)', async () => {
      for (let i = 0; i < 5; i++) {
        const res = await claim('mallory', `ABCD-EFGH-JKMN-PQR${i}`);
        assert.equal(res.status, 404);
        assert.equal(res.body.error.code, 'binding.claim_code_invalid');
      }
      const d = devices[2]!;
      const code = await issue(d.id);
      await press(d);
      // Locked: even the right code with the device's presence is refused until the lockout ends.
      const locked = await claim('mallory', code);
      assert.equal(locked.status, 429);
      assert.equal(locked.body.error.code, 'binding.claim_locked');
      assert.ok(locked.body.error.details.retryAfterSeconds > 0);
      assert.equal(await refusals('binding.claim_code_invalid'), 5);
      assert.equal(await refusals('binding.claim_locked'), 1);
      const rows = await t.platform.db.selectFrom('claim_failures').selectAll().where('subject', '=', `user:${ids.mallory}`).execute();
      assert.equal(rows[0]!.failures, 5);
      t.clock.advance(901_000);
      await press(d);
      assert.equal((await claim('mallory', code)).status, 201);
    });

    it('an operator cannot read a claim code after it was made: stored hashed, shown once, never in the binding view or the audit log', async () => {
      const d = devices[1]!;
      const code = await issue(d.id);
      const stored = await t.platform.db.selectFrom('device_claims').selectAll().where('device_id', '=', d.id).executeTakeFirstOrThrow();
      const bare = code.replaceAll('-', '');
      assert.ok(stored.code_hash && !stored.code_hash.includes(bare) && !stored.code_hash.includes(code));
      const view = await api().get(`/api/v1/devices/${d.id}/binding`, { token: operator });
      assert.equal(view.status, 200);
      assert.ok(!view.text.includes(code) && !view.text.includes(bare));
      assert.deepEqual(Object.keys(view.body.claimCode).sort(), ['createdAt', 'usedAt']);
      const exported: string[] = [];
      for await (const line of t.platform.audit.export(org)) exported.push(line);
      assert.ok(!exported.join('').includes(bare));
      // Consumers cannot reach the operator view.
      assert.equal((await api().get(`/api/v1/devices/${d.id}/binding`, { token: tokens.bob })).status, 403);
    });

    it('unbind ends every share, resets the device (which confirms), and a new owner claims it with a new code', async () => {
      const [d] = devices;
      const invite = await api().post(
        `/api/v1/my/devices/${d!.id}/shares`,
        { email: 'bob@example.com', role: 'guest' },
        { token: tokens.alice },
      );
      assert.equal(invite.status, 201, invite.text);
      assert.equal((await api().post(`/api/v1/my/invitations/${invite.body.id}/accept`, undefined, { token: tokens.bob })).status, 200);
      assert.equal((await api().get(`/api/v1/my/devices/${d!.id}`, { token: tokens.bob })).body.role, 'guest');

      const { messages, client } = await online(d!);
      const unbound = await api().delete(`/api/v1/my/devices/${d!.id}`, { token: tokens.alice });
      assert.equal(unbound.status, 200, unbound.text);
      await eventually(() => messages.some((m) => m.topic === `d/${d!.id}/binding/reset`), 5000, 'reset delivered');
      const reset = messages.find((m) => m.topic === `d/${d!.id}/binding/reset`)!.body;
      assert.equal(typeof reset.resetId, 'string');
      // Every standing ended: the owner's and the guest's.
      assert.equal((await api().get(`/api/v1/my/devices/${d!.id}`, { token: tokens.alice })).status, 404);
      assert.equal((await api().get(`/api/v1/my/devices/${d!.id}`, { token: tokens.bob })).status, 404);

      await client.publishAsync(`d/${d!.id}/binding/reset/result`, JSON.stringify({ resetId: reset.resetId, status: 'ok' }), { qos: 1 });
      const view = await api().get(`/api/v1/devices/${d!.id}/binding`, { token: operator });
      assert.equal(view.body.bound, false);
      assert.ok(view.body.lastReset.confirmedAt);
      const confirmed = await t.platform.audit.query({ organizationId: org, action: 'binding.reset_confirmed', targetId: d!.id });
      assert.equal(confirmed.entries.length, 1);
      // A confirmation of a reset that was not sent is refused on the device's error topic.
      await client.publishAsync(`d/${d!.id}/binding/reset/result`, JSON.stringify({ resetId: reset.resetId, status: 'ok' }), { qos: 1 });
      await eventually(
        () => messages.some((m) => m.topic === `d/${d!.id}/errors` && m.body.code === 'binding.reset_unknown'),
        5000,
        'refusal',
      );

      // Free again: a new code and a press, and a new owner.
      const code = await issue(d!.id);
      await press(d!);
      const reclaimed = await claim('bob', code);
      assert.equal(reclaimed.status, 201, reclaimed.text);
      assert.equal(reclaimed.body.role, 'owner');
    });

    it('an operator resets a binding (devices:write): the owner loses the device and the device is told to reset', async () => {
      const [d] = devices;
      const { messages } = await online(d!);
      const before = messages.filter((m) => m.topic === `d/${d!.id}/binding/reset`).length;
      const res = await api().delete(`/api/v1/devices/${d!.id}/binding`, { token: operator });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.bound, false);
      assert.equal(res.body.lastReset.confirmedAt, null);
      await eventually(() => messages.filter((m) => m.topic === `d/${d!.id}/binding/reset`).length > before, 5000, 'reset delivered');
      assert.equal((await api().get(`/api/v1/my/devices/${d!.id}`, { token: tokens.bob })).status, 404);
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.reset_by_operator', targetId: d!.id });
      assert.equal(entries[0]!.details.previousOwner, ids.bob);
    });

    it('claims with the other presence proof: the device signs the challenge the app relays; forged, foreign and reused signatures are refused', async () => {
      const [d, other] = [devices[4]!, devices[5]!];
      const code = await issue(d.id);
      const signedBy = (key: string, deviceId: string, nonce: string) =>
        sign('sha256', Buffer.from(claimProofMessage(deviceId, nonce)), key).toString('base64');
      const challenge = async (who: string) => {
        const res = await api().post('/api/v1/my/devices/claim/challenge', { code }, { token: tokens[who] });
        assert.equal(res.status, 201, res.text);
        return res.body.nonce as string;
      };
      const claimWith = (who: string, proof: { nonce: string; signature: string }) =>
        api().post('/api/v1/my/devices/claim', { code, proof }, { token: tokens[who] });

      const nonce = await challenge('alice');
      // Signed by another device's key, or by this device's key over another device's ID: not this device's proof.
      for (const signature of [
        signedBy(other.key, d.id, nonce),
        signedBy(d.key, other.id, nonce),
        Buffer.from('forged').toString('base64'),
      ]) {
        const res = await claimWith('alice', { nonce, signature });
        assert.equal(res.status, 409);
        assert.equal(res.body.error.code, 'binding.presence_proof_invalid');
      }
      // Bob holds no challenge: Alice's nonce and the device's signature over it do not let him in.
      const stolen = await claimWith('bob', { nonce, signature: signedBy(d.key, d.id, nonce) });
      assert.equal(stolen.body.error.code, 'binding.presence_proof_invalid');
      assert.equal(await refusals('binding.presence_proof_invalid'), 4);

      const claimed = await claimWith('alice', { nonce, signature: signedBy(d.key, d.id, nonce) });
      assert.equal(claimed.status, 201, claimed.text);
      const { entries } = await t.platform.audit.query({ organizationId: org, action: 'binding.claimed', targetId: d.id });
      assert.equal(entries[0]!.details.presence, 'signed_nonce');
      // Unbound and given a new code, the old signature is spent.
      assert.equal((await api().delete(`/api/v1/my/devices/${d.id}`, { token: tokens.alice })).status, 200);
      const fresh = await issue(d.id);
      const replay = await api().post(
        '/api/v1/my/devices/claim',
        { code: fresh, proof: { nonce, signature: signedBy(d.key, d.id, nonce) } },
        { token: tokens.alice },
      );
      assert.equal(replay.body.error.code, 'binding.presence_proof_invalid');
      // A challenge expires with the claim window.
      const late = (await api().post('/api/v1/my/devices/claim/challenge', { code: fresh }, { token: tokens.alice })).body.nonce;
      t.clock.advance(121_000);
      const expired = await api().post(
        '/api/v1/my/devices/claim',
        { code: fresh, proof: { nonce: late, signature: signedBy(d.key, d.id, late) } },
        { token: tokens.alice },
      );
      assert.equal(expired.body.error.code, 'binding.presence_expired');
    });

    it('locks claiming from one source address after repeated failures across accounts (binding.claim_locked)', async () => {
      // Every consumer here signs in from 127.0.0.1: a few wrong codes each, under their own limit of 5.
      let lockedAfter = 0;
      for (let n = 0; n < 8 && !lockedAfter; n++) {
        const user = await insertConsumer(t, `guesser-${n}@example.com`, STRONG_PASSWORD);
        const token = await signIn(t, user);
        for (let i = 0; i < 4; i++) {
          const res = await api().post('/api/v1/my/devices/claim', { code: `WXYZ-WXYZ-WXYZ-WX${n}${i}` }, { token });
          if (res.status === 429) {
            assert.equal(res.body.error.code, 'binding.claim_locked');
            lockedAfter = n * 4 + i;
            break;
          }
          assert.equal(res.body.error.code, 'binding.claim_code_invalid');
        }
      }
      assert.ok(lockedAfter > 0 && lockedAfter <= 20, `locked after ${lockedAfter} guesses from the address`);
      const fresh = await insertConsumer(t, 'fresh@example.com', STRONG_PASSWORD);
      const res = await api().post('/api/v1/my/devices/claim', { code: 'ABCD-ABCD-ABCD-ABCD' }, { token: await signIn(t, fresh) });
      assert.equal(res.status, 429);
      assert.equal(res.body.error.code, 'binding.claim_locked');
      const address = await t.platform.db
        .selectFrom('claim_failures')
        .selectAll()
        .where('subject', '=', 'ip:127.0.0.1')
        .executeTakeFirstOrThrow();
      assert.ok(Number(address.locked_until) > t.clock.now());
    });

    it('bounds presence reports per device (binding.presence_rate_limited)', async () => {
      const d = devices[3]!;
      const { messages } = await online(d);
      for (let i = 0; i < 7; i++) await press(d);
      await eventually(
        () => messages.some((m) => m.topic === `d/${d.id}/errors` && m.body.code === 'binding.presence_rate_limited'),
        5000,
        'presence refused',
      );
    });
  });
}
