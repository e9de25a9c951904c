/**
 * The Aedes internals client-state.ts reads and changes, checked on a bare Aedes broker (over TCP:
 * what is under test is Aedes' client object, not the transport; the gateway's suites run the same
 * code over TLS): these fail first if an Aedes upgrade moves them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Aedes, type Client } from 'aedes';
import mqtt from 'mqtt';
import { writeToStream } from 'mqtt-packet';
import { clientOf, dropNumberCache, forgetConnectPacket, refreshKeepalive, slimClient, takeKeepalive } from './client-state.js';
import { eventually } from '../../testing/mqtt.js';

describe('the Aedes client internals the gateway relies on', () => {
  async function brokerOnTcp(slim: boolean) {
    const broker = await Aedes.createBroker();
    // As the gateway does once it has accepted a CONNECT (broker.ts, onReady).
    if (slim) broker.on('clientReady', (client) => forgetConnectPacket(client));
    const handed: { socket: Socket; client: Client; eosBefore: unknown }[] = [];
    const server = createServer((socket) => {
      const client = broker.handle(socket);
      const eosBefore = (client as unknown as { _eos: unknown })._eos;
      if (slim) slimClient(client);
      handed.push({ socket, client, eosBefore });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const disconnected: string[] = [];
    broker.on('clientDisconnect', (client) => disconnected.push(client.id));
    const connect = (clientId: string, protocolVersion: 4 | 5 = 4) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, keepalive: 60, reconnectPeriod: 0, protocolVersion });
    const close = async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      server.close();
    };
    return { broker, handed, port, connect, disconnected, close };
  }

  it('a client Aedes has just taken holds conn.client, a stream.finished() watch of its connection, then a keep-alive timer', async () => {
    const b = await brokerOnTcp(false);
    try {
      const device = await b.connect('plain-1');
      const [{ socket, client, eosBefore }] = b.handed as [(typeof b.handed)[number]];
      assert.equal(clientOf(socket), client, 'Aedes sets conn.client');
      assert.equal(typeof eosBefore, 'function', 'Aedes keeps its finished() cleanup as _eos');
      assert.ok(socket.listenerCount('finish') > 0, 'finished() listens on the connection');
      const timer = (client as unknown as { _keepaliveTimer: NodeJS.Timeout | null })._keepaliveTimer;
      assert.equal(typeof timer?.refresh, 'function', 'the keep-alive timer is a Timeout Aedes refreshes');
      refreshKeepalive(client);
      const parser = parserOf(client);
      assert.equal(typeof (parser._list as { pipe?: unknown }).pipe, 'function', 'the parser buffers in a bl BufferListStream');
      assert.deepEqual(parser._states, ['_parseHeader', '_parseLength', '_parsePayload', '_newPacket']);
      assert.equal(parser.settings.clientId, 'plain-1', 'the parser keeps the CONNECT as its settings');
      assert.equal(parser.settings.protocolVersion, 4);
      assert.ok((client as unknown as { _topicAliases: unknown })._topicAliases instanceof Map);
      await device.endAsync();
    } finally {
      await b.close();
    }
  });

  it('a slimmed client drops the finished() watch and still closes when its connection ends, from either side', async () => {
    const b = await brokerOnTcp(true);
    try {
      const leaving = await b.connect('slim-1');
      const dropped = await b.connect('slim-2');
      dropped.on('error', () => undefined);
      const [first, second] = b.handed as [(typeof b.handed)[number], (typeof b.handed)[number]];
      assert.equal(first.socket.listenerCount('finish'), 0, 'no finished() listener left');
      // The device goes away without DISCONNECT (its TCP connection just closes).
      leaving.stream.destroy();
      // The server ends the connection under Aedes (as the transport guard does on a refusal).
      second.socket.destroy();
      await eventually(() => b.disconnected.length === 2, 5000, 'both clients closed');
      assert.deepEqual(b.disconnected.sort(), ['slim-1', 'slim-2']);
      assert.ok(first.client.closed && second.client.closed);
      assert.equal(b.broker.connectedClients, 0);
      dropped.end(true);
    } finally {
      await b.close();
    }
  });

  it('a slimmed client parses with a plain buffer list and shared steps, forgets its CONNECT once accepted, and still reads packets split anywhere', async () => {
    const b = await brokerOnTcp(true);
    try {
      const listener = await b.connect('slim-listener');
      await listener.subscribeAsync('split/#', { qos: 0 });
      const received = new Promise<Buffer>((resolve) => listener.once('message', (_topic, payload) => resolve(payload)));
      // A raw client sends its CONNECT and a PUBLISH one byte at a time: every byte a read of its own.
      const raw = tcpConnect(b.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.on('data', () => undefined);
      const payload = Buffer.from('a payload that arrives one byte at a time');
      for (const packet of [connectPacket('slim-raw'), publishPacket('split/one', payload)])
        for (const byte of packet) {
          raw.write(Buffer.from([byte]));
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      assert.deepEqual(await received, payload);
      const [first, second] = b.handed as [(typeof b.handed)[number], (typeof b.handed)[number]];
      for (const { client } of [first, second]) {
        const parser = parserOf(client);
        assert.equal((parser._list as { pipe?: unknown }).pipe, undefined, 'a buffer list, not a stream');
        assert.equal(parser._list.length, 0, 'nothing left unparsed');
        assert.deepEqual(parser.settings, { protocolVersion: 4 }, 'the CONNECT is forgotten');
      }
      assert.equal(parserOf(first.client)._states, parserOf(second.client)._states, 'one list of parsing steps');
      assert.equal(parserOf(first.client).settings, parserOf(second.client).settings, 'one settings object per protocol level');
      raw.destroy();
      await listener.endAsync();
    } finally {
      await b.close();
    }
  });

  it('slimmed clients pass connection and parser errors on through one shared function each, and still close on them', async () => {
    const b = await brokerOnTcp(true);
    try {
      const parserErrors: string[] = [];
      b.broker.on('clientError', (_client, error) => parserErrors.push(error.message));
      b.broker.on('connectionError', (_client, error) => parserErrors.push(error.message));
      const one = await b.connect('relay-1');
      one.on('error', () => undefined);
      await b.connect('relay-2');
      const [first, second] = b.handed as [(typeof b.handed)[number], (typeof b.handed)[number]];
      const errorListeners = (emitter: { listeners(event: string): Function[] }) => emitter.listeners('error'); // eslint-disable-line @typescript-eslint/no-unsafe-function-type
      for (const { socket, client } of [first, second]) {
        assert.deepEqual(
          errorListeners(socket).map((l) => l.name),
          ['relayConnectionError'],
          'the connection relays errors through the shared function, no bound one',
        );
        const parser = parserOf(client) as unknown as { listeners(event: string): Function[] }; // eslint-disable-line @typescript-eslint/no-unsafe-function-type
        assert.deepEqual(
          errorListeners(parser).map((l) => l.name),
          ['relayParserError'],
        );
        assert.equal(socket.listenerCount('end'), 0, 'no end listener: the close covers it');
      }
      assert.equal(errorListeners(first.socket)[0], errorListeners(second.socket)[0], 'one function for every connection');
      // A parser error: a packet of the reserved type 0 on the first connection.
      one.stream.write(Buffer.from([0x00, 0x00]));
      await eventually(() => b.disconnected.includes('relay-1'), 5000, 'the parser error closed the client');
      // A connection error on the second.
      second.socket.destroy(new Error('connection broke'));
      await eventually(() => b.disconnected.includes('relay-2'), 5000, 'the connection error closed the client');
      assert.ok(parserErrors.includes('connection broke'), `the client saw the connection error: ${parserErrors.join('; ')}`);
      assert.ok(parserErrors.length >= 2, `the client saw the parser error: ${parserErrors.join('; ')}`);
    } finally {
      await b.close();
    }
  });

  it('the keep-alive can be taken over once the CONNACK is out: Aedes’s timer cleared, the watch refreshed by every packet', async () => {
    const b = await brokerOnTcp(true);
    try {
      const taken: { client: Client; interval: number; timer: unknown }[] = [];
      let refreshed = 0;
      const watch = { refresh: () => refreshed++ };
      b.broker.on('clientReady', (client) => {
        const timer = (client as unknown as { _keepaliveTimer: unknown })._keepaliveTimer;
        taken.push({ client, interval: takeKeepalive(client, watch), timer });
      });
      const device = await b.connect('keepalive-1');
      await eventually(() => taken.length === 1, 2000, 'clientReady');
      const [{ client, interval, timer }] = taken as [(typeof taken)[number]];
      assert.equal(interval, 60 * 1500 + 1, 'Aedes’s interval: 1.5 keep-alives and 1 ms');
      assert.equal((timer as { _onTimeout: unknown })._onTimeout, null, 'Aedes’s timer is cleared');
      assert.equal((client as unknown as { _keepaliveTimer: unknown })._keepaliveTimer, watch);
      const before = refreshed;
      await device.publishAsync('keepalive/one', 'x', { qos: 1 });
      await eventually(() => refreshed > before, 2000, 'the PUBLISH refreshed the watch');
      refreshKeepalive(client);
      assert.equal(refreshed, before + 2);
      await device.endAsync();
      await eventually(() => b.disconnected.includes('keepalive-1'), 2000, 'the client closes with the watch in place of its timer');
    } finally {
      await b.close();
    }
  });

  it('without mqtt-packet’s number cache, Aedes still writes the message IDs of QoS 1 packets', async () => {
    dropNumberCache();
    assert.equal(writeToStream.cacheNumbers, false);
    const b = await brokerOnTcp(true);
    try {
      const subscriber = await b.connect('numbers-sub');
      const publisher = await b.connect('numbers-pub');
      assert.deepEqual(
        (await subscriber.subscribeAsync('numbers/#', { qos: 1 })).map((g) => g.qos),
        [1],
      );
      const received = new Promise<{ payload: Buffer; messageId: number | undefined }>((resolve) =>
        subscriber.once('message', (_topic, payload, packet) => resolve({ payload, messageId: packet.messageId })),
      );
      const sent = await publisher.publishAsync('numbers/one', 'qos 1', { qos: 1 });
      assert.equal(sent?.cmd, 'publish', 'the PUBACK came back for the publisher’s message ID');
      const { payload, messageId } = await received;
      assert.equal(payload.toString(), 'qos 1');
      assert.ok(messageId !== undefined && messageId > 0, 'the broker wrote a message ID');
      await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
    } finally {
      await b.close();
    }
  });

  it('attack: without topic aliases granted, slimmed clients share one empty alias map that an aliased PUBLISH cannot write to', async () => {
    const b = await brokerOnTcp(true);
    try {
      const aliasing = await b.connect('slim-alias', 5);
      const other = await b.connect('slim-other', 5);
      const [first, second] = b.handed as [(typeof b.handed)[number], (typeof b.handed)[number]];
      const aliases = (client: Client) => (client as unknown as { _topicAliases: Map<number, string> })._topicAliases;
      assert.equal(aliases(first.client), aliases(second.client), 'one map for every client');
      assert.throws(() => aliases(first.client).set(1, 'a/topic'), /no topic alias is granted/);
      // mqtt.js sends no alias the broker did not grant: the PUBLISH is written by hand.
      aliasing.on('error', () => undefined);
      aliasing.stream.write(publishPacket('alias/topic', Buffer.from('x'), 1));
      await eventually(() => b.disconnected.includes('slim-alias'), 5000, 'the aliased PUBLISH ends the session');
      assert.equal(aliases(second.client).size, 0);
      assert.ok(other.connected);
      aliasing.end(true);
      await other.endAsync();
    } finally {
      await b.close();
    }
  });
});

interface ParserState {
  _list: { length: number };
  _states: string[];
  settings: { clientId?: string; protocolVersion?: number };
}

const parserOf = (client: Client) => (client as unknown as { _parser: ParserState })._parser;

/** An MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s). */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, 4, ...Buffer.from('MQTT'), 4, 0x02, 0, 60, id.length >> 8, id.length & 0xff]), id]);
  assert.ok(body.length < 128, 'one-byte remaining length');
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** A QoS 0 PUBLISH; with `alias`, an MQTT 5 one carrying that Topic Alias. */
function publishPacket(topic: string, payload: Buffer, alias?: number): Buffer {
  const name = Buffer.from(topic);
  const properties = alias === undefined ? null : Buffer.from([3, 0x23, alias >> 8, alias & 0xff]);
  const body = Buffer.concat([Buffer.from([name.length >> 8, name.length & 0xff]), name, ...(properties ? [properties] : []), payload]);
  assert.ok(body.length < 128, 'one-byte remaining length');
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
