import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeDevicePublish, authorizeDeviceSubscribe, mayDeliver } from './acl.js';
import { PacketSizeScanner, PacketTooLargeError, TokenBucket } from './guard.js';

const ME = 'dev-1';

describe('device ACL', () => {
  it('lets a device publish on its own channels', () => {
    for (const topic of ['d/dev-1/telemetry', 'd/dev-1/state/reported', 'd/dev-1/commands/c-42/result', 'd/dev-1/presence', 'd/dev-1/updates/report']) {
      const decision = authorizeDevicePublish(ME, 'active', topic);
      assert.equal(decision.ok, true, topic);
    }
  });

  it('refuses publishing as another device, outside the scheme, or into $SYS', () => {
    for (const topic of ['d/dev-2/telemetry', 'd/dev-1x/telemetry', 'd/dev-1/telemetry/extra', 'd/dev-1/other', 'd/dev-1/state/desired', 'd/dev-1/state/delta', 'd/dev-1/errors', 'd/dev-1/commands/c-1', 'd/dev-1/commands/../result', '$SYS/broker/x', 'telemetry', 'd/dev-1/', `d/dev-1/${'a/'.repeat(10)}x`, `d/dev-1/${'x'.repeat(300)}`]) {
      const decision = authorizeDevicePublish(ME, 'active', topic);
      assert.equal(decision.ok, false, topic);
    }
  });

  it('refuses a device publishing on the channels only the platform publishes on (updates/available)', () => {
    assert.equal(authorizeDevicePublish(ME, 'active', 'd/dev-1/updates/available').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/updates/available').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'active', 'd/dev-1/updates/status').ok, true);
  });

  it('closes everything but the update topics to a quarantined device, and everything to a disabled one', () => {
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/telemetry').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/updates/report').ok, true);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/commands/+').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/#').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/updates/#').ok, true);
    assert.equal(authorizeDevicePublish(ME, 'disabled', 'd/dev-1/updates/report').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'retired', 'd/dev-1/updates/#').ok, false);
    assert.equal(mayDeliver(ME, 'quarantined', 'd/dev-1/commands/c1'), false);
    assert.equal(mayDeliver(ME, 'quarantined', 'd/dev-1/updates/targets'), true);
    assert.equal(mayDeliver(ME, 'active', 'd/dev-2/commands/c1'), false);
  });

  it('lets a device subscribe below its own prefix, wildcards included', () => {
    for (const filter of ['d/dev-1/commands/+', 'd/dev-1/#', 'd/dev-1/state/desired', 'd/dev-1/+/delta']) {
      assert.equal(authorizeDeviceSubscribe(ME, 'active', filter).ok, true, filter);
    }
  });

  it('refuses filters that reach beyond the device: #, +, $SYS, shared subscriptions, malformed wildcards', () => {
    for (const filter of ['#', '+/#', 'd/#', 'd/+/telemetry', 'd/+/#', 'd/dev-2/#', '$SYS/#', '$share/g/d/dev-1/#', '$share/g/#', 'd/dev-1#', 'd/dev-1/a#', 'd/dev-1/#/x', 'd/dev-1/a+/b', 'd/dev-1/', '']) {
      assert.equal(authorizeDeviceSubscribe(ME, 'active', filter).ok, false, filter);
    }
  });
});

describe('MQTT transport guards', () => {
  /** A PUBLISH fixed header announcing `length` bytes. */
  function header(length: number): Buffer {
    const bytes = [0x30];
    do {
      let byte = length % 128;
      length = Math.floor(length / 128);
      if (length > 0) byte |= 0x80;
      bytes.push(byte);
    } while (length > 0);
    return Buffer.from(bytes);
  }

  it('follows packet boundaries across chunks and refuses the first packet over the limit before its body', () => {
    const scanner = new PacketSizeScanner(1000);
    const small = Buffer.concat([header(10), Buffer.alloc(10), header(999), Buffer.alloc(999)]);
    // Split at every position: boundaries must be found whatever the chunking.
    for (let cut = 1; cut < small.length; cut += 97) {
      const s = new PacketSizeScanner(1000);
      s.scan(small.subarray(0, cut));
      s.scan(small.subarray(cut));
    }
    scanner.scan(small);
    assert.throws(() => scanner.scan(header(1001)), (e: unknown) => e instanceof PacketTooLargeError && e.size === 1001);
    const split = new PacketSizeScanner(1000);
    const big = header(300_000);
    split.scan(big.subarray(0, 2));
    assert.throws(() => split.scan(big.subarray(2)), PacketTooLargeError);
  });

  it('refuses a remaining length longer than four bytes', () => {
    assert.throws(() => new PacketSizeScanner(1 << 30).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), PacketTooLargeError);
  });

  it('rate-limits with a token bucket: the burst, then the rate', () => {
    const bucket = new TokenBucket(10, 5, 0);
    const taken = Array.from({ length: 8 }, () => bucket.take(0)).filter(Boolean).length;
    assert.equal(taken, 5);
    assert.equal(bucket.take(50), false);
    assert.equal(bucket.take(100), true);
    const debt = new TokenBucket(100, 1, 0);
    assert.equal(debt.borrow(0), 0);
    assert.equal(debt.borrow(0), 10);
  });
});
