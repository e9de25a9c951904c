/**
 * A node's shutdown with connections that will never finish by themselves: raw TCP connections
 * that never start a TLS handshake, on the HTTPS port and on the MQTT port, and a TLS session
 * that never sends CONNECT. The node stops within its grace period instead of waiting for them
 * (Node's own handshake timeout is 120 s on HTTPS; on MQTT they were held for ever).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { ENGINES } from '../testing/engines.js';
import { eventually } from '../testing/mqtt.js';
import { RawMqtt } from '../testing/raw-mqtt.js';
import { startTestPlatform } from '../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const GRACE_MS = 1000;

describe('node shutdown [sqlite]', () => {
  it('ends connections idle before or inside their TLS handshake, on both listeners, within the grace period', async () => {
    const t = await startTestPlatform(sqlite, {
      http: { port: 0, shutdownGraceMs: GRACE_MS },
      mqtt: { port: 0, connectTimeoutMs: 60_000 },
    });
    const silent = (port: number): Socket => connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    const sockets = [t.server.port, t.server.port, t.server.mqtt!.port, t.server.mqtt!.port].map(silent);
    const tls = await RawMqtt.open(t.server.mqtt!.port, t.ca, null);
    await eventually(() => sockets.every((socket) => socket.readyState === 'open'), 5000, 'sockets connected');
    const started = Date.now();
    await t.close();
    const took = Date.now() - started;
    console.log(`shutdown with ${sockets.length + 1} idle connections: ${took} ms`);
    assert.ok(took < GRACE_MS + 5000, `shutdown took ${took} ms`);
    await tls.closed;
    await eventually(
      () => sockets.every((socket) => socket.destroyed || socket.readyState === 'closed'),
      5000,
      'every socket closed by the server',
    );
  });
});
