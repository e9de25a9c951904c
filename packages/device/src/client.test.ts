import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliActor, createToken, deviceResource } from '@bulwark/server/testing';
import { DeviceClient } from './client.js';
import { ConnectionRefusedError, IdentityLockedError, QueueWriteError } from './errors.js';
import { FileQueue } from './queue.js';
import { deviceSasToken } from './sas.js';
import type { ErrorReply } from '@bulwark/protocol';
import { startDeviceProcess } from './testing/device-process.js';
import { eventually, NetworkFault, presenceOnline, settle, startDevicePlatform, type DevicePlatform } from './testing/platform.js';
import { smallFilesystem, tmpfsUnavailable } from './testing/small-fs.js';

describe('device client against a real broker over mutual TLS', () => {
  let p: DevicePlatform;
  const cleanup: (() => unknown)[] = [];
  before(async () => {
    p = await startDevicePlatform();
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await p?.close();
  });

  function track(client: DeviceClient): DeviceClient {
    cleanup.push(() => client.stop());
    return client;
  }

  const values = async (deviceId: string) =>
    (await p.t.platform.telemetry.store.range(deviceId, 0, Number.MAX_SAFE_INTEGER, 1000)).map(
      (r) => JSON.parse(r.data) as Record<string, unknown>,
    );

  it('connects with its certificate and sends telemetry, one reading and a batch, that lands in the telemetry table', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
    await client.connect();
    assert.equal(client.isConnected, true);
    const now = p.t.clock.now();
    client.sendTelemetry({ temperature: 21.5, door: 'open' }, now - 3000);
    client.sendTelemetryBatch([
      { ts: now - 2000, values: { temperature: 21.6 } },
      { ts: now - 1000, values: { temperature: 21.7 } },
    ]);
    await client.drained(5000);
    assert.deepEqual(await values(deviceId), [{ temperature: 21.5, door: 'open' }, { temperature: 21.6 }, { temperature: 21.7 }]);
    assert.equal((await presenceOnline(p.t.platform.db, deviceId)).protocol, 'mqtts');
    assert.equal(client.stats.acked, 2);
  });

  it('surfaces the platform’s error replies as events, and the refused message still leaves the queue', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
    const replies: ErrorReply[] = [];
    client.on('errorReply', (reply: ErrorReply) => replies.push(reply));
    await client.connect();
    client.sendTelemetry({ 'bad name!': 1 });
    client.sendTelemetry({ fine: 1 }, Date.UTC(1999, 0, 1));
    await client.drained(5000);
    await eventually(() => replies.length === 2, 3000, 'two error replies');
    assert.deepEqual(
      replies.map((r) => [r.topic, r.code]),
      [
        [`d/${deviceId}/telemetry`, 'payload.invalid'],
        [`d/${deviceId}/telemetry`, 'payload.invalid_timestamp'],
      ],
    );
    assert.equal(client.queue.size, 0);
    assert.equal(await p.stored(deviceId), 0);
  });

  it('reconnects with growing, jittered backoff while the network is down, never in a tight loop, and then sends what was queued, in order', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const fault = new NetworkFault(p.t.server.mqtt!.port);
    cleanup.push(() => fault.close());
    const port = await fault.listen();
    const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: `mqtts://localhost:${port}`, backoff: { baseMs: 50, capMs: 400 } }));
    const retries: { attempt: number; delayMs: number }[] = [];
    const events: string[] = [];
    client.on('reconnecting', (r: { attempt: number; delayMs: number }) => retries.push(r));
    client.on('connected', () => events.push('connected'));
    client.on('disconnected', () => events.push('disconnected'));
    await client.connect();

    fault.cut();
    const now = p.t.clock.now();
    for (let n = 0; n < 5; n++) client.sendTelemetry({ n }, now - 5000 + n);
    await settle(2000);
    assert.equal(client.isConnected, false);
    assert.equal(await p.stored(deviceId), 0);
    // 2 s with delays drawn from [50, min(400, 50·2^n)] ms: a handful of attempts, not hundreds.
    assert.ok(retries.length >= 4 && retries.length <= 40, `${retries.length} attempts in 2 s`);
    retries.forEach((r, i) => {
      assert.equal(r.attempt, i);
      assert.ok(r.delayMs >= 50 && r.delayMs <= Math.min(400, 50 * 2 ** i), `attempt ${i} waited ${r.delayMs} ms`);
    });
    assert.ok(fault.refused >= retries.length - 1, 'every retry reached the network');

    fault.restore();
    await eventually(() => client.isConnected, 3000, 'reconnected');
    await client.drained(5000);
    assert.deepEqual(
      await values(deviceId),
      [0, 1, 2, 3, 4].map((n) => ({ n })),
    );
    assert.deepEqual(events, ['connected', 'disconnected', 'connected']);
  });

  it('takes several broker addresses: a dead first node is skipped, and a lost connection moves on to the next address, round robin', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const [a, b] = [new NetworkFault(p.t.server.mqtt!.port), new NetworkFault(p.t.server.mqtt!.port)];
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const urls = [`mqtts://localhost:${await a.listen()}`, `mqtts://localhost:${await b.listen()}`];
    a.cut();
    const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: urls, backoff: { baseMs: 50, capMs: 200 } }));
    const dialled: string[] = [];
    client.on('reconnecting', (r: { brokerUrl: string }) => dialled.push(r.brokerUrl));
    await client.connect();
    assert.equal(client.brokerUrl, urls[1], 'connected through the second address');
    assert.equal(a.refused, 1);
    client.sendTelemetry({ n: 1 });
    await client.drained(5000);

    a.restore();
    b.cut();
    await eventually(() => client.isConnected && client.brokerUrl === urls[0], 5000, 'back on the first address');
    client.sendTelemetry({ n: 2 });
    await client.drained(5000);
    assert.deepEqual(await values(deviceId), [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(dialled, [urls[1], urls[0]], 'each retry went to the next address');
    assert.throws(
      () => new DeviceClient({ brokerUrl: [], deviceId, ca: '', credentials: { type: 'symmetric', key: 'a2V5' } }),
      /at least one broker address/,
    );
  });

  it('keeps what it could not send across a client restart and delivers it after reconnecting, nothing lost; a torn last line is dropped and reported', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const fault = new NetworkFault(p.t.server.mqtt!.port);
    cleanup.push(() => fault.close());
    const port = await fault.listen();
    const now = p.t.clock.now();
    const first = DeviceClient.fromIdentity(dir, { brokerUrl: `mqtts://localhost:${port}`, backoff: { baseMs: 50, capMs: 200 } });
    await first.connect();
    for (let n = 0; n < 3; n++) first.sendTelemetry({ n }, now - 10_000 + n);
    await first.drained(5000);
    fault.cut();
    for (let n = 3; n < 10; n++) first.sendTelemetry({ n }, now - 10_000 + n);
    await first.stop(); // the process ends with 7 messages unacknowledged
    // ... in the middle of writing an eighth: half a line, which was never accepted.
    const queueDir = join(dir, 'queue');
    appendFileSync(join(queueDir, readdirSync(queueDir).sort().at(-1)!), '{"s":10,"t":"telemetry","p":"{\\"val');

    const second = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
    const recovered: unknown[] = [];
    second.on('queueRecovered', (report: unknown) => recovered.push(report));
    assert.equal(second.queue.size, 7);
    await second.connect();
    assert.deepEqual(recovered, [{ tornLines: 1, corruptLines: 0 }]);
    second.sendTelemetry({ n: 10 }, now - 10_000 + 10);
    await second.drained(5000);
    assert.deepEqual(
      await values(deviceId),
      Array.from({ length: 11 }, (_, n) => ({ n })),
    );
  });

  it(
    'on a full disk sendTelemetry throws queue.storage_full and keeps nothing of the reading; once there is room the next one is stored whole and delivered',
    { skip: tmpfsUnavailable ?? false },
    async () => {
      const { deviceId, dir } = await p.enrolledDevice();
      const disk = smallFilesystem(join(dir, 'queue'));
      try {
        const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
        await client.connect();
        client.sendTelemetry({ n: 0 });
        await client.drained(5000);
        disk.fill();
        // More than the block the queue is writing has left: the file system takes part of it.
        const big = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`v${i}`, 'x'.repeat(250)]));
        for (const attempt of [1, 2]) {
          assert.throws(
            () => client.sendTelemetry(big),
            (error: unknown) => error instanceof QueueWriteError && error.code === 'queue.storage_full',
            `attempt ${attempt}`,
          );
        }
        assert.equal(client.queue.size, 0);
        disk.free();
        client.sendTelemetry(big);
        await client.drained(5000);
        await client.stop();
        assert.deepEqual(await values(deviceId), [{ n: 0 }, big]);
        const reopened = new FileQueue(disk.dir);
        assert.deepEqual([reopened.size, reopened.tornLines, reopened.corruptLines], [0, 0, 0]);
        reopened.close();
      } finally {
        disk.unmount();
      }
    },
  );

  it(
    'a device process whose acknowledgements cannot be written (full disk) does not crash: it reports them, keeps the messages and sends them again once there is room',
    { skip: tmpfsUnavailable ?? false },
    async () => {
      const { deviceId, dir } = await p.enrolledDevice();
      const disk = smallFilesystem(join(dir, 'queue'));
      try {
        const device = startDeviceProcess('ack-full', dir, p.brokerUrl);
        const { code, signal, stderr } = await device.exited;
        assert.deepEqual([code, signal], [0, null], stderr);
        const queued = device.events.find((e) => e.event === 'queued')!.count as number;
        const failures = device.events.filter((e) => e.event === 'queueError');
        assert.equal(failures.length, queued, 'every acknowledgement failed');
        assert.ok(failures.every((e) => e.code === 'queue.storage_full' && e.name === 'QueueWriteError'));
        assert.deepEqual(
          device.events.find((e) => e.event === 'alive'),
          { event: 'alive', size: queued },
          'all kept',
        );
        assert.ok(device.events.some((e) => e.event === 'drained'));
        // Delivered before the failures and again after them (at least once), the last reading once.
        const stored = await values(deviceId);
        assert.equal(stored.length, 2 * queued + 1);
        assert.equal(stored.filter((v) => v.n === 'after').length, 1);
        assert.equal(stored.filter((v) => v.n === 0).length, 2);
      } finally {
        disk.unmount();
      }
    },
  );

  it('attack: a second process on the same identity directory is refused while the first runs, and takes over once it was killed', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const first = startDeviceProcess('hold', dir, p.brokerUrl);
    cleanup.push(() => first.child.kill('SIGKILL'));
    await first.waitFor((e) => e.event === 'holding');
    assert.throws(
      () => DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }),
      (error: unknown) => error instanceof IdentityLockedError && error.code === 'identity.locked' && error.pid === first.child.pid,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const second = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
    // One client per directory in a process too.
    assert.throws(() => DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }), IdentityLockedError);
    await second.connect();
    second.sendTelemetry({ taken: 1 });
    await second.drained(5000);
    await second.stop();
    assert.deepEqual(await values(deviceId), [{ holding: 1 }, { taken: 1 }]);
    track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl }));
  });

  it('attack: a revoked certificate is dropped by the broker, refused (CONNACK 5) on reconnect, reported once and never retried', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const client = track(DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl, backoff: { baseMs: 50, capMs: 100 } }));
    const errors: Error[] = [];
    let retries = 0;
    client.on('error', (error: Error) => errors.push(error));
    client.on('reconnecting', () => retries++);
    await client.connect();
    const serial = new X509Certificate(readFileSync(join(dir, 'device.pem'))).serialNumber.toLowerCase();
    await p.t.platform.pki.revoke({ organizationId: p.org, serial, reason: 'keyCompromise' }, { type: 'cli', id: 'test' });
    await eventually(() => errors.length === 1, 5000, 'the refusal reported');
    assert.ok(errors[0] instanceof ConnectionRefusedError);
    assert.equal((errors[0] as ConnectionRefusedError).returnCode, 5);
    const failuresAtRefusal = p.t.server.mqtt!.stats.authFailures;
    const retriesAtRefusal = retries;
    await settle(1000);
    assert.equal(retries, retriesAtRefusal, 'no attempt after the refusal');
    assert.equal(p.t.server.mqtt!.stats.authFailures, failuresAtRefusal);
    assert.equal(client.isConnected, false);
    await assert.rejects(client.connect(), ConnectionRefusedError);
    assert.equal(await p.stored(deviceId), 0);
  });

  it('with MQTT 5: sends telemetry that lands; a revocation ends the session with reason 0x98, and the reconnect refused (0x87) is final', async () => {
    const { deviceId, dir } = await p.enrolledDevice();
    const client = track(
      DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl, protocolVersion: 5, backoff: { baseMs: 50, capMs: 100 } }),
    );
    const errors: Error[] = [];
    const ends: { server?: { reasonCode: number; reason: string } }[] = [];
    client.on('error', (error: Error) => errors.push(error));
    client.on('disconnected', (event: { server?: { reasonCode: number; reason: string } }) => ends.push(event));
    await client.connect();
    client.sendTelemetry({ mqtt5: 1 });
    await client.drained(5000);
    assert.deepEqual(await values(deviceId), [{ mqtt5: 1 }]);
    const serial = new X509Certificate(readFileSync(join(dir, 'device.pem'))).serialNumber.toLowerCase();
    await p.t.platform.pki.revoke({ organizationId: p.org, serial, reason: 'keyCompromise' }, { type: 'cli', id: 'test' });
    await eventually(() => errors.length === 1, 5000, 'the refusal reported');
    assert.deepEqual(
      ends.map((e) => e.server),
      [{ reasonCode: 0x98, reason: 'certificate revoked' }],
    );
    assert.ok(errors[0] instanceof ConnectionRefusedError);
    assert.equal((errors[0] as ConnectionRefusedError).returnCode, 0x87);
    assert.equal((errors[0] as ConnectionRefusedError).code, 'mqtt.connack_135');
  });

  it('a symmetric-key device logs in with a SAS token and renews it before it expires by reconnecting', async () => {
    const actor = cliActor(p.org, 'test');
    const deviceId = await p.register();
    const { key } = await p.t.platform.devices.symmetricKeys.issueKey(actor, deviceId);
    const client = track(
      new DeviceClient({
        brokerUrl: p.brokerUrl,
        deviceId,
        ca: p.t.ca,
        clock: p.t.clock,
        // A token's expiry is stamped in whole seconds, so a token lives between 3 and 4 s: renewed
        // 2.5 s ahead, a busy machine's late timer or slow handshake still renews it in time.
        credentials: { type: 'symmetric', key, tokenLifetimeSeconds: 4, refreshBeforeSeconds: 2.5 },
      }),
    );
    let retries = 0;
    client.on('reconnecting', () => retries++);
    await client.connect();
    client.sendTelemetry({ battery: 3.1 });
    await client.drained(3000);
    // Past the first token's expiry: still connected through fresh tokens, never through a retry.
    await settle(4500);
    assert.ok(client.stats.connects >= 3, `${client.stats.connects} connections`);
    assert.equal(retries, 0);
    await eventually(() => client.isConnected, 2000, 'connected');
    client.sendTelemetry({ battery: 3.0 });
    await client.drained(3000);
    assert.equal(await p.stored(deviceId), 2);
  });

  it('attack: a symmetric-key device with the wrong key is refused (CONNACK 4) and does not retry', async () => {
    const actor = cliActor(p.org, 'test');
    const deviceId = await p.register();
    await p.t.platform.devices.symmetricKeys.issueKey(actor, deviceId);
    let retries = 0;
    const client = track(
      new DeviceClient({
        brokerUrl: p.brokerUrl,
        deviceId,
        ca: p.t.ca,
        clock: p.t.clock,
        credentials: { type: 'symmetric', key: Buffer.alloc(32, 7) },
      }),
    );
    client.on('reconnecting', () => retries++);
    await assert.rejects(client.connect(), (error: unknown) => error instanceof ConnectionRefusedError && error.returnCode === 4);
    await settle(500);
    assert.equal(retries, 0);
  });

  it('makes SAS tokens byte for byte as the platform does', () => {
    const key = Buffer.alloc(32, 3);
    for (const id of ['01JDABCDEF', 'dev ice/ü'])
      assert.equal(deviceSasToken(key, id, 1_900_000_000), createToken(key, deviceResource(id), 1_900_000_000));
  });
});
