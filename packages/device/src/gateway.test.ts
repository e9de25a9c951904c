import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '@bulwark/server/testing';
import { DeviceClient } from './client.js';
import { ChildRegistrationError } from './errors.js';
import { GatewayClient } from './gateway.js';
import { eventually, presenceOnline, startDevicePlatform, type DevicePlatform } from './testing/platform.js';

describe('gateway mode against the real platform (protocol §3.5)', () => {
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

  async function gateway(made = true): Promise<{ deviceId: string; gateway: GatewayClient }> {
    const { deviceId, dir } = await p.enrolledDevice();
    if (made) await p.t.platform.devices.gateways.setGateway(actor(), deviceId, true);
    const client = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl });
    cleanup.push(() => client.stop());
    const relay = new GatewayClient(client);
    await client.connect();
    await presenceOnline(p.t.platform.db, deviceId, 3000);
    return { deviceId, gateway: relay };
  }

  it('registers children, sends their telemetry and state, runs their commands, and learns when one is moved away', async () => {
    const { gateway: gw } = await gateway();
    const sensor = await gw.registerChild('SDK-CHILD-1', { productId: p.product });
    const lamp = await gw.registerChild('SDK-CHILD-2', { product: 'Test sensor' });
    assert.notEqual(sensor.deviceId, lamp.deviceId);
    // Again after a restart: the same child.
    assert.equal((await gw.registerChild('SDK-CHILD-1', { productId: p.product })).deviceId, sensor.deviceId);

    sensor.sendTelemetry({ temperature: 21 });
    sensor.sendTelemetryBatch([{ values: { temperature: 22 } }, { values: { temperature: 23 } }]);
    lamp.reportState({ on: true });
    await gw.client.drained(5000);
    assert.equal(await p.stored(sensor.deviceId), 3);
    assert.deepEqual((await p.t.platform.devices.shadow.get(actor(), lamp.deviceId)).reported.state, { on: true });

    const desired: unknown[] = [];
    lamp.onDesired((state) => void desired.push(state));
    lamp.onCommand('blink', async (params) => ({ status: 'ok', result: { times: params.times } }));
    await eventually(() => gw.client.isConnected, 2000, 'connected');
    // The relay subscribed on registration; a command sent now reaches the lamp through the gateway.
    const sent = await p.t.platform.devices.commands.send(actor(), lamp.deviceId, { name: 'blink', params: { times: 3 } });
    const done = await p.t.platform.devices.commands.get(actor(), lamp.deviceId, sent.id, 5000);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { times: 3 });
    await p.t.platform.devices.shadow.setDesired(actor(), lamp.deviceId, { on: false });
    await eventually(() => desired.some((s) => (s as { on?: boolean }).on === false), 3000, 'desired state through the gateway');

    const other = await gateway();
    const detached: [string, string][] = [];
    gw.on('detached', (id: string, reason: string) => detached.push([id, reason]));
    await p.t.platform.devices.gateways.attachChild(actor(), other.deviceId, sensor.deviceId);
    await eventually(() => detached.length === 1, 3000, 'detached event');
    assert.deepEqual(detached[0], [sensor.deviceId, 'moved to another gateway']);
    assert.equal(gw.child(sensor.deviceId), undefined);
    assert.ok(gw.child(lamp.deviceId));
  });

  it('a device no operator made a gateway is refused with gateway.not_a_gateway', async () => {
    const { gateway: gw } = await gateway(false);
    await assert.rejects(gw.registerChild('SDK-NOPE', { productId: p.product }), (error: unknown) => {
      assert.ok(error instanceof ChildRegistrationError);
      assert.equal(error.code, 'gateway.not_a_gateway');
      return true;
    });
  });
});
