import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor, insertConsumer, signIn, STRONG_PASSWORD } from '@bulwark/server/testing';
import { DeviceClient } from './client.js';
import { eventually, presenceOnline, startDevicePlatform, type DevicePlatform } from './testing/platform.js';

describe('binding against the real platform: the button press and the user-data reset (docs/binding.md)', () => {
  let p: DevicePlatform;
  const cleanup: (() => unknown)[] = [];
  const actor = () => cliActor(p.org, 'test');
  before(async () => {
    p = await startDevicePlatform({ auth: { loginRateLimitPerMinute: 10_000 } });
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await p?.close();
  });

  const client = (dir: string) => {
    const c = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl });
    cleanup.push(() => c.stop());
    return c;
  };
  const consumer = async (name: string) => signIn(p.t, await insertConsumer(p.t, `${name}@example.com`, STRONG_PASSWORD));
  const code = async (deviceId: string) => (await p.t.platform.binding.claims.issueCodes(actor(), [deviceId]))[0]!.code;
  const claim = (token: string, claimCode: string) => p.t.client().post('/api/v1/my/devices/claim', { code: claimCode }, { token });

  it('a button press lets a consumer claim the device; unbinding erases its user data, confirmed; a new owner claims it', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const device = client(dir);
    // What the previous owner left on the device, erased by the handler.
    const userData = new Map<string, string>([['wifi', 'home-network']]);
    const resets: string[] = [];
    device.onUserDataReset((reset) => {
      userData.clear();
      resets.push(reset.resetId);
    });
    await assert.rejects(device.reportPresence(), /offline/);
    await device.connect();
    await presenceOnline(p.t.platform.db, deviceId, 3000);

    const alice = await consumer('alice');
    const first = await code(deviceId);
    const early = await claim(alice, first);
    assert.equal(early.body.error.code, 'binding.presence_required');
    await device.reportPresence();
    const claimed = await claim(alice, first);
    assert.equal(claimed.status, 201, claimed.text);
    userData.set('schedule', 'alice: 7:00');

    assert.equal((await p.t.client().delete(`/api/v1/my/devices/${deviceId}`, { token: alice })).status, 200);
    await eventually(() => resets.length === 1 && userData.size === 0, 5000, 'user data erased');
    await eventually(
      async () => (await p.t.platform.binding.service.operatorView(actor(), deviceId)).lastReset?.confirmedAt != null,
      5000,
      'reset confirmed to the platform',
    );

    const bob = await consumer('bob');
    assert.equal((await claim(bob, first)).body.error.code, 'binding.claim_code_used');
    const second = await code(deviceId);
    await device.reportPresence();
    const reclaimed = await claim(bob, second);
    assert.equal(reclaimed.status, 201, reclaimed.text);
    assert.equal(reclaimed.body.role, 'owner');
  });

  it('signs the claim challenge the app relays, and the consumer claims with it instead of a button press', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const device = client(dir);
    const dave = await consumer('dave');
    const claimCode = await code(deviceId);
    const challenge = await p.t.client().post('/api/v1/my/devices/claim/challenge', { code: claimCode }, { token: dave });
    assert.equal(challenge.status, 201, challenge.text);
    // Over BLE in real life: the app hands the nonce to the device, which signs it with its own key (offline is fine).
    const signature = device.signClaimNonce(challenge.body.nonce);
    const claimed = await p.t
      .client()
      .post('/api/v1/my/devices/claim', { code: claimCode, proof: { nonce: challenge.body.nonce, signature } }, { token: dave });
    assert.equal(claimed.status, 201, claimed.text);
    assert.equal(claimed.body.role, 'owner');
  });

  it('a device offline when it was unbound erases its user data when it connects again', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    let device = client(dir);
    await device.connect();
    await presenceOnline(p.t.platform.db, deviceId, 3000);
    const carol = await consumer('carol');
    const claimCode = await code(deviceId);
    await device.reportPresence();
    assert.equal((await claim(carol, claimCode)).status, 201);
    await device.stop();

    await p.t.platform.binding.service.operatorReset(actor(), deviceId);
    const resets: string[] = [];
    device = client(dir);
    device.onUserDataReset((reset) => void resets.push(reset.resetId));
    await device.connect();
    await eventually(() => resets.length === 1, 5000, 'pending reset delivered on connect');
    await eventually(
      async () => (await p.t.platform.binding.service.operatorView(actor(), deviceId)).lastReset?.confirmedAt != null,
      5000,
      'reset confirmed',
    );
  });
});
