import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '@bulwark/server/testing';
import { DeviceClient } from './client.js';
import type { Command, JsonObject } from '@bulwark/protocol';
import { eventually, presenceOnline, startDevicePlatform, type DevicePlatform } from './testing/platform.js';

describe('shadow sync and commands against the real platform (protocol §3.3, §3.4)', () => {
  let p: DevicePlatform;
  const cleanup: (() => unknown)[] = [];
  const actor = () => cliActor(p.org, 'test');
  before(async () => {
    p = await startDevicePlatform();
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await p?.close();
  });

  /** The platform sends commands to devices it has recorded as connected (presence is written just after CONNECT). */
  const online = (deviceId: string) => presenceOnline(p.t.platform.db, deviceId, 3000);

  const client = (dir: string) => {
    const c = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl });
    cleanup.push(() => c.stop());
    return c;
  };

  it('catches up with the desired state on connect, applies the delta, reports it, and follows later changes', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    await p.t.platform.devices.shadow.setDesired(actor(), deviceId, { led: 'on', fw: { channel: 'beta' } });
    const device = client(dir);
    const desired: [JsonObject, number][] = [];
    device.onDesired((state, version) => {
      desired.push([state, version]);
    });
    device.onDelta((delta) => {
      if (Object.keys(delta).length > 0) device.reportState(delta);
    });
    await device.connect();
    await eventually(
      async () => Object.keys((await p.t.platform.devices.shadow.get(actor(), deviceId)).delta).length === 0,
      5000,
      'reported catches up with desired',
    );
    const shadow = await p.t.platform.devices.shadow.get(actor(), deviceId);
    assert.deepEqual(shadow.reported.state, { led: 'on', fw: { channel: 'beta' } });
    assert.deepEqual(desired[0], [{ led: 'on', fw: { channel: 'beta' } }, 1]);

    await p.t.platform.devices.shadow.setDesired(actor(), deviceId, { led: 'off' });
    await eventually(() => desired.some(([, v]) => v === 2), 5000, 'desired version 2 delivered');
    await eventually(
      async () => (await p.t.platform.devices.shadow.get(actor(), deviceId)).reported.state.led === 'off',
      5000,
      'reported led off',
    );

    // Asking again brings the same version: already applied, so the handler does not run again.
    const before = desired.length;
    device.requestState();
    await device.drained(2000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(desired.length, before);
  });

  it('runs a command once, and its result reaches the platform; a redelivery of the same ID, even after a restart, is not run again', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    let device = client(dir);
    const runs: Command[] = [];
    const reboot = (params: Record<string, unknown>, command: Command) => {
      runs.push(command);
      return { status: 'ok' as const, result: { delayed: params.delay } };
    };
    device.onCommand('reboot', reboot);
    await device.connect();
    await online(deviceId);
    const sent = await p.t.platform.devices.commands.send(actor(), deviceId, { name: 'reboot', params: { delay: 5 } });
    const done = await p.t.platform.devices.commands.get(actor(), deviceId, sent.id, 5000);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { delayed: 5 });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.id, sent.id);

    const body = { name: 'reboot', params: { delay: 5 }, timeoutMs: 30_000, issuedAt: p.t.clock.now() };
    await p.t.server.mqtt!.publishToDevice(deviceId, `commands/${sent.id}`, body);
    await eventually(() => device.stats.duplicateCommands === 1, 3000, 'duplicate seen');
    await device.stop();

    device = client(dir);
    device.onCommand('reboot', reboot);
    await device.connect();
    await p.t.server.mqtt!.publishToDevice(deviceId, `commands/${sent.id}`, body);
    await eventually(() => device.stats.duplicateCommands === 1, 3000, 'duplicate seen after restart');
    assert.equal(runs.length, 1);
  });

  it('answers an unknown command "rejected" and a failing handler "error", with the reason', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const device = client(dir);
    device.onCommand('calibrate', () => {
      throw new Error('sensor busy');
    });
    await device.connect();
    await online(deviceId);
    const unknown = await p.t.platform.devices.commands.send(actor(), deviceId, { name: 'self-destruct' });
    const failing = await p.t.platform.devices.commands.send(actor(), deviceId, { name: 'calibrate' });
    const [u, f] = await Promise.all([unknown, failing].map((c) => p.t.platform.devices.commands.get(actor(), deviceId, c.id, 5000)));
    assert.equal(u!.status, 'rejected');
    assert.match(u!.error!, /no command "self-destruct"/);
    assert.equal(f!.status, 'failed');
    assert.equal(f!.error, 'sensor busy');
  });
});
