/**
 * The byte-level MQTT framing of the transport guard, against packets mqtt-packet builds (the
 * encoder the broker's own parser pairs with), cut into chunks at every kind of boundary: packet
 * limits, the stop after a CONNECT, the protocol level, filter counts of SUBSCRIBE and
 * UNSUBSCRIBE (3.1.1 and 5), and the Maximum QoS added to an MQTT 5 CONNACK. Also the token bucket.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { ConnectVersionReader, encodeLength, FilterCounter, PacketScanner, PacketTooLargeError, withMaximumQos1 } from './frames.js';
import { TokenBucket } from './guard.js';

/** A PUBLISH fixed header announcing `length` bytes. */
const header = (length: number): Buffer => Buffer.from([0x30, ...encodeLength(length)]);

/** Feeds `bytes` to `feed` in pieces cut at `cuts` (positions, any order). */
function inPieces(bytes: Buffer, cuts: number[], feed: (piece: Buffer) => void): void {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) feed(bytes.subarray(from, point));
    from = Math.max(from, point);
  }
}

const parse = (bytes: Buffer, version: 4 | 5): Packet[] => {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: Packet[] = [];
  parser.on('packet', (p: Packet) => packets.push(p));
  parser.parse(bytes);
  return packets;
};

describe('MQTT framing for the transport guard', () => {
  it('follows packet boundaries across chunks and refuses the first packet over the limit before its body', () => {
    const scanner = new PacketScanner(1000);
    const small = Buffer.concat([header(10), Buffer.alloc(10), header(999), Buffer.alloc(999)]);
    // Split at every position: boundaries must be found whatever the chunking.
    for (let cut = 1; cut < small.length; cut += 97) {
      const s = new PacketScanner(1000);
      s.scan(small.subarray(0, cut));
      s.scan(small.subarray(cut));
    }
    scanner.scan(small);
    assert.throws(
      () => scanner.scan(header(1001)),
      (e: unknown) => e instanceof PacketTooLargeError && e.size === 1001,
    );
    const split = new PacketScanner(1000);
    const big = header(300_000);
    split.scan(big.subarray(0, 2));
    assert.throws(() => split.scan(big.subarray(2)), PacketTooLargeError);
  });

  it('refuses a remaining length longer than four bytes', () => {
    assert.throws(() => new PacketScanner(1 << 30).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), PacketTooLargeError);
  });

  it('stops at the end of the packet it is asked to, wherever the chunks are cut, and reads its protocol level', () => {
    for (const version of [4, 5] as const) {
      const connect = mqttPacket.generate(
        {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: version,
          clientId: 'device-1',
          clean: true,
          keepalive: 60,
          will: { topic: 'd/device-1/presence', payload: Buffer.alloc(300), qos: 1, retain: false },
        },
        { protocolVersion: version },
      );
      const behind = mqttPacket.generate({ cmd: 'pingreq' });
      const stream = Buffer.concat([connect, behind]);
      fc.assert(
        fc.property(fc.array(fc.nat(stream.length), { maxLength: 6 }), (cuts) => {
          const scanner = new PacketScanner(1 << 20);
          const reader = new ConnectVersionReader();
          let consumed = 0;
          let stoppedAt = -1;
          inPieces(stream, cuts, (piece) => {
            const end = scanner.scan(piece, { visitHeader: (type) => (type === 1 ? { read: reader, stop: true } : undefined) });
            if (scanner.halted && stoppedAt < 0) stoppedAt = consumed + end;
            consumed += piece.length;
          });
          assert.equal(stoppedAt, connect.length);
          assert.equal(reader.version, version);
        }),
      );
    }
  });

  it('counts the filters of SUBSCRIBE and UNSUBSCRIBE packets, MQTT 3.1.1 and 5, however they are chunked, and lowers QoS 2 to 1 keeping the other options', () => {
    const filter = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((f) => !f.includes('\u0000'));
    const subscription = fc.record({
      topic: filter,
      qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
      nl: fc.boolean(),
      rap: fc.boolean(),
      rh: fc.constantFrom(0, 1, 2),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(4 as const, 5 as const),
        fc.boolean(),
        fc.array(subscription, { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(4000), { maxLength: 8 }),
        fc.boolean(),
        (version, subscribe, entries, cuts, withProperties) => {
          const properties = version === 5 && withProperties ? { userProperties: { origin: 'x'.repeat(200) } } : undefined;
          const asked = entries.map((e) => (version === 5 ? e : { topic: e.topic, qos: e.qos }));
          const packet: Packet = subscribe
            ? { cmd: 'subscribe', messageId: 9, subscriptions: asked, ...(properties ? { properties } : {}) }
            : { cmd: 'unsubscribe', messageId: 9, unsubscriptions: entries.map((e) => e.topic), ...(properties ? { properties } : {}) };
          const bytes = mqttPacket.generate(packet, { protocolVersion: version });
          assert.equal(parse(bytes, version).length, 1, 'a well-formed packet');
          const counter = new FilterCounter(version, subscribe);
          const scanner = new PacketScanner(1 << 20);
          inPieces(bytes, cuts, (piece) => scanner.scan(piece, { visitHeader: () => ({ read: counter }) }));
          assert.equal(counter.count, entries.length);
          if (!subscribe) return;
          const [seen] = parse(bytes, version) as unknown as [{ subscriptions: typeof asked }];
          assert.deepEqual(
            seen.subscriptions,
            asked.map((e) => ({ ...e, qos: Math.min(e.qos, 1) })),
          );
        },
      ),
    );
  });

  it('adds Maximum QoS 1 to an MQTT 5 CONNACK that accepts, keeping its other properties; leaves refusals and 3.1.1 alone', () => {
    const accepted = mqttPacket.generate(
      {
        cmd: 'connack',
        reasonCode: 0,
        sessionPresent: false,
        properties: { maximumPacketSize: 65536, topicAliasMaximum: 0, sharedSubscriptionAvailable: false, serverKeepAlive: 1200 },
      },
      { protocolVersion: 5 },
    );
    const [amended] = parse(withMaximumQos1(accepted), 5) as unknown as [{ properties: Record<string, unknown>; reasonCode: number }];
    assert.equal(amended.reasonCode, 0);
    assert.deepEqual(amended.properties, {
      maximumPacketSize: 65536,
      topicAliasMaximum: 0,
      sharedSubscriptionAvailable: false,
      serverKeepAlive: 1200,
      maximumQoS: 1,
    });
    const bare = mqttPacket.generate({ cmd: 'connack', reasonCode: 0, sessionPresent: true }, { protocolVersion: 5 });
    assert.equal((parse(withMaximumQos1(bare), 5)[0] as { properties: { maximumQoS: number } }).properties.maximumQoS, 1);
    const refused = mqttPacket.generate({ cmd: 'connack', reasonCode: 0x87, sessionPresent: false }, { protocolVersion: 5 });
    assert.deepEqual(withMaximumQos1(refused), refused);
    const v4 = mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }, { protocolVersion: 4 });
    assert.deepEqual(withMaximumQos1(v4), v4);
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
