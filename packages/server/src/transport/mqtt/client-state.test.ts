/**
 * The Aedes internals client-state.ts reads and changes, checked on a bare Aedes broker (over TCP:
 * what is under test is Aedes' client object, not the transport; the gateway's suites run the same
 * code over TLS): these fail first if an Aedes upgrade moves them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Aedes, type Client } from 'aedes';
import mqtt from 'mqtt';
import { clientOf, refreshKeepalive, slimClient } from './client-state.js';
import { eventually } from '../../testing/mqtt.js';

describe('the Aedes client internals the gateway relies on', () => {
  async function brokerOnTcp(slim: boolean) {
    const broker = await Aedes.createBroker();
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
    const connect = (clientId: string) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, keepalive: 60, reconnectPeriod: 0, protocolVersion: 4 });
    const close = async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      server.close();
    };
    return { broker, handed, connect, disconnected, close };
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
});
