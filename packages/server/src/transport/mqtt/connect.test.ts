/**
 * The broker around CONNECT, byte by byte (raw TLS sockets, packets from mqtt-packet): packets a
 * client sends behind its CONNECT wait for the CONNACK and are dropped when it is refused; a
 * CONNECT too large, or anything else first, closes the connection; TLS handshakes and CONNECTs
 * that never come time out; the keep-alive a device asks for is bounded. SQLite only: the
 * behaviour under test is the transport's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { ENGINES } from '../../testing/engines.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import { RawMqtt } from '../../testing/raw-mqtt.js';
import { eventually, settle } from '../../testing/mqtt.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const CONNECT_TIMEOUT_MS = 1500;

describe('MQTT CONNECT handling [sqlite]', () => {
  const s = useBrokerSuite(sqlite, { connectsPerSecond: 1000, connectTimeoutMs: CONNECT_TIMEOUT_MS, maxConnectBytes: 4096 }, 'CN');
  const raws: RawMqtt[] = [];
  const open = async (credentials: { key: string; cert: string } | null, version: 4 | 5 = 4) => {
    const raw = await RawMqtt.open(s.port, s.t.ca, credentials, version);
    raws.push(raw);
    return raw;
  };

  it('a PUBLISH sent right behind the CONNECT (its own TLS record, no wait) is handled after the CONNACK, every time', async () => {
    const d = await s.device();
    for (let i = 0; i < 10; i++) {
      const raw = await open(d);
      raw.send(raw.connectPacket(d.id), {
        cmd: 'publish',
        topic: `d/${d.id}/telemetry`,
        payload: Buffer.from(`{"values":{"n":${i}}}`),
        qos: 1,
        messageId: 1,
        retain: false,
        dup: false,
      });
      const ack = await raw.next('puback');
      assert.equal(ack.messageId, 1);
      assert.deepEqual(raw.commands().slice(0, 2), ['connack', 'puback']);
      assert.equal((raw.received[0] as { returnCode?: number }).returnCode, 0);
      raw.close();
      await raw.closed;
    }
    assert.equal(await s.stored(d.id), 10);
  });

  it('attack: a refused CONNECT gets its CONNACK and nothing else; the SUBSCRIBE and PINGREQ behind it are never processed', async () => {
    const d = await s.device();
    const raw = await open(null);
    raw.send(
      raw.connectPacket(d.id),
      { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: `d/${d.id}/commands/+`, qos: 1 }] },
      { cmd: 'pingreq' },
    );
    assert.ok(await raw.closedWithin(), 'the broker closed the connection');
    assert.deepEqual(raw.commands(), ['connack']);
    assert.equal((raw.received[0] as { returnCode?: number }).returnCode, 5);
  });

  it('attack: a device flushing a pipelined backlog behind its CONNECT keeps its packets in order', async () => {
    const d = await s.device();
    const raw = await open(d);
    const publishes = Array.from({ length: 50 }, (_, i) => ({
      cmd: 'publish' as const,
      topic: `d/${d.id}/telemetry`,
      payload: Buffer.from(`{"values":{"seq":${i}}}`),
      qos: 1 as const,
      messageId: i + 1,
      retain: false,
      dup: false,
    }));
    raw.send(raw.connectPacket(d.id), { cmd: 'pingreq' }, ...publishes);
    await raw.next('pingresp');
    const acks = () => raw.received.filter((p) => p.cmd === 'puback').map((p) => (p as { messageId: number }).messageId);
    await eventually(() => acks().length === 50 || raw.isClosed, 10_000, 'fifty PUBACKs');
    assert.deepEqual(
      acks(),
      publishes.map((p) => p.messageId),
    );
    assert.deepEqual(raw.commands().slice(0, 2), ['connack', 'pingresp']);
    assert.equal(await s.stored(d.id), 50);
  });

  it('attack: a CONNECT larger than maxConnectBytes, or a first packet that is not a CONNECT, closes the connection unanswered', async () => {
    const d = await s.device();
    const big = await open(d);
    big.send(big.connectPacket(d.id, { will: { topic: `d/${d.id}/presence`, payload: Buffer.alloc(5000), qos: 0, retain: false } }));
    assert.ok(await big.closedWithin(), 'the broker closed the connection');
    assert.deepEqual(big.commands(), []);
    const notConnect = await open(d);
    notConnect.send({ cmd: 'pingreq' });
    assert.ok(await notConnect.closedWithin(), 'the broker closed the connection');
    assert.deepEqual(notConnect.commands(), []);
  });

  it(`attack: a TCP connection that never starts its TLS handshake is closed after connectTimeoutMs (${CONNECT_TIMEOUT_MS} ms)`, async () => {
    const socket = tcpConnect({ host: '127.0.0.1', port: s.port }).on('error', () => undefined);
    const started = Date.now();
    await Promise.race([new Promise((resolve) => socket.once('close', resolve)), settle(CONNECT_TIMEOUT_MS + 5000)]);
    assert.ok(socket.destroyed, 'the broker closed the connection');
    const waited = Date.now() - started;
    assert.ok(waited >= CONNECT_TIMEOUT_MS - 200 && waited < CONNECT_TIMEOUT_MS + 5000, `closed after ${waited} ms`);
  });

  it(`attack: a TLS session that never sends CONNECT is closed after connectTimeoutMs (${CONNECT_TIMEOUT_MS} ms)`, async () => {
    const d = await s.device();
    const raw = await open(d);
    const started = Date.now();
    await raw.closed;
    const waited = Date.now() - started;
    assert.ok(waited >= CONNECT_TIMEOUT_MS - 200 && waited < CONNECT_TIMEOUT_MS + 5000, `closed after ${waited} ms`);
  });

  it('MQTT 3.1.1: a keep-alive of 0 or over 1,200 s is accepted and taken as 1,200 s (CONNACK 0, not the reserved 6)', async () => {
    const d = await s.device();
    for (const keepalive of [0, 1201, 65535]) {
      const raw = await open(d);
      raw.send(raw.connectPacket(d.id, { keepalive }));
      assert.equal((await raw.next('connack')).returnCode, 0, `keep-alive ${keepalive}`);
      raw.close();
    }
  });

  for (const version of [4, 5] as const)
    it(`MQTT ${version === 4 ? '3.1.1' : 5}: keep-alive is enforced: a session that only pings stays and gets its PINGRESPs; a silent one is closed after 1.5 times its keep-alive`, async () => {
      const [pinging, silent] = [await s.device(), await s.device()];
      const pinger = await open(pinging, version);
      pinger.send(pinger.connectPacket(pinging.id, { keepalive: 1 }));
      await pinger.next('connack');
      const quiet = await open(silent, version);
      quiet.send(quiet.connectPacket(silent.id, { keepalive: 1 }));
      await quiet.next('connack');
      const started = Date.now();
      for (let i = 0; i < 6; i++) {
        await settle(500);
        pinger.send({ cmd: 'pingreq' });
      }
      assert.ok(await quiet.closedWithin(1), `the silent session is closed (after ${Date.now() - started} ms)`);
      await eventually(() => pinger.commands().filter((c) => c === 'pingresp').length === 6, 2000, 'six PINGRESPs');
      assert.equal(pinger.isClosed, false, 'the pinging session stays open past 1.5 times its keep-alive');
      await settle(2000);
      assert.equal(pinger.isClosed, true, 'and is closed once it stops pinging');
    });

  it('MQTT 5: a keep-alive of 0 or over 1,200 s is answered with Server Keep Alive 1,200 in the CONNACK', async () => {
    const d = await s.device();
    for (const keepalive of [0, 65535]) {
      const raw = await open(d, 5);
      raw.send(raw.connectPacket(d.id, { keepalive }));
      const connack = await raw.next('connack');
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.serverKeepAlive, 1200, `keep-alive ${keepalive}`);
      raw.close();
    }
  });
});
