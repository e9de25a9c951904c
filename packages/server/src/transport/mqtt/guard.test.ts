/**
 * ConnectionGuard as the connection Aedes is handed, over a real TCP connection (no broker): what
 * it passes on and when, the writes mqtt-packet makes under cork() reaching the socket as one,
 * strings included, backpressure both ways ('drain', the 16 KB it holds for the parser), and its
 * end. The broker's suites (limits, overload, abuse, mqtt5) test it with Aedes behind it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { ConnectionGuard, READ_BUFFER_BYTES } from './guard.js';
import type { FrameError } from './frames.js';

const LIMITS = { maxPacketBytes: 64 * 1024, maxConnectBytes: 4096, maxFiltersPerSubscribe: 8 };
const connectPacket = (version: 4 | 5 = 4) =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: 'guarded', clean: true, keepalive: 60 });
const publishPacket = (payload: Buffer | string, qos: 0 | 1 = 0) =>
  mqttPacket.generate({ cmd: 'publish', topic: 'd/x/telemetry', payload, qos, messageId: qos ? 7 : undefined, retain: false, dup: false });
const never = { borrow: () => 0 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function eventually(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the transport guard as the connection Aedes reads and writes', () => {
  let server: Server;
  const accepted: Socket[] = [];
  const peers: Socket[] = [];

  before(async () => {
    server = createServer((socket) => accepted.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(async () => {
    for (const socket of [...accepted, ...peers]) socket.destroy();
    server.close();
    await once(server, 'close');
  });

  /** A guarded server-side socket and the client socket talking to it. */
  async function pair(): Promise<{ guard: ConnectionGuard; peer: Socket; refused: FrameError[] }> {
    const before = accepted.length;
    const peer = connect((server.address() as { port: number }).port, '127.0.0.1');
    peers.push(peer);
    peer.on('error', () => undefined); // the guard's end resets some of them
    await once(peer, 'connect');
    await eventually(() => accepted.length > before, 'accepted');
    const refused: FrameError[] = [];
    const guard = new ConnectionGuard(accepted.at(-1)!, LIMITS, (_g, error) => refused.push(error));
    return { guard, peer, refused };
  }

  /** Everything the guard passes on, as Aedes reads it: read() on each 'readable'. */
  function reader(guard: ConnectionGuard): { bytes: () => Buffer; events: () => number } {
    const chunks: Buffer[] = [];
    let events = 0;
    guard.on('readable', () => {
      events++;
      for (let chunk = guard.read(null); chunk; chunk = guard.read(null)) chunks.push(chunk);
    });
    return { bytes: () => Buffer.concat(chunks), events: () => events };
  }

  it('passes the CONNECT, holds what follows until open(), then passes it in order', async () => {
    const { guard, peer } = await pair();
    const read = reader(guard);
    const connectBytes = connectPacket();
    const publishes = Buffer.concat([publishPacket('one'), publishPacket('two')]);
    peer.write(Buffer.concat([connectBytes, publishes]));
    await eventually(() => read.bytes().length >= connectBytes.length, 'the CONNECT passed');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(read.bytes(), connectBytes, 'nothing after the CONNECT before the broker answered');
    assert.equal(guard.protocolVersion, 4);
    guard.open(never);
    await eventually(() => read.bytes().length === connectBytes.length + publishes.length, 'the held publishes passed');
    assert.deepEqual(read.bytes(), Buffer.concat([connectBytes, publishes]));
    guard.destroy();
  });

  it('writes the pieces of a packet given under cork(), strings as UTF-8, to the socket as one write', async () => {
    const { guard, peer } = await pair();
    const writes: Buffer[] = [];
    const socketWrite = guard.socket.write.bind(guard.socket);
    guard.socket.write = ((chunk: Buffer, ...rest: never[]) => {
      writes.push(Buffer.from(chunk));
      return socketWrite(chunk, ...rest);
    }) as typeof guard.socket.write;
    const received: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => received.push(chunk));
    // As mqtt-packet writes a PUBLISH with a string topic: cork, the pieces, uncork on the next tick.
    const expected = mqttPacket.generate({
      cmd: 'publish',
      topic: 'd/é/commands',
      payload: Buffer.from('pay'),
      qos: 0,
      retain: false,
      dup: false,
    });
    mqttPacket.writeToStream(
      { cmd: 'publish', topic: 'd/é/commands', payload: Buffer.from('pay'), qos: 0, retain: false, dup: false },
      guard as never,
    );
    assert.equal(writes.length, 0, 'nothing reaches the socket while corked');
    await tick();
    assert.equal(writes.length, 1, 'one write to the socket for the packet');
    assert.deepEqual(writes[0], expected);
    await eventually(() => Buffer.concat(received).length === expected.length, 'the peer got the packet');
    assert.deepEqual(Buffer.concat(received), expected);
    guard.destroy();
  });

  it('tells Aedes to wait when the socket is full, and emits drain once the peer reads', async () => {
    const { guard, peer } = await pair();
    peer.pause();
    const block = Buffer.alloc(64 * 1024, 1);
    let writes = 0;
    while (guard.write(block)) writes++;
    assert.ok(writes < 10_000, 'the socket filled');
    const drained = once(guard, 'drain');
    peer.resume();
    await drained;
    guard.destroy();
  });

  it('counts what waits under cork towards the high-water mark, and a false answer is followed by a drain', async () => {
    const { guard, peer } = await pair();
    const received: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => received.push(chunk));
    const limit = guard.socket.writableHighWaterMark;
    const piece = Buffer.alloc(1024, 2);
    guard.cork();
    let answers = 0;
    while (answers < 1_000 && guard.write(piece)) answers++;
    // The socket itself holds nothing yet: only the corked pieces say "wait".
    assert.equal(guard.socket.writableLength, 0);
    assert.equal(answers, Math.ceil(limit / piece.length) - 1, 'false once the corked bytes reach the mark');
    let drains = 0;
    guard.on('drain', () => drains++);
    guard.uncork();
    await eventually(() => drains === 1, 'a drain after the corked bytes went to the socket');
    await eventually(() => Buffer.concat(received).length === (answers + 1) * piece.length, 'the peer got every piece');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(drains, 1, 'one drain for one false answer');

    // Below the mark nothing is owed: no drain.
    guard.cork();
    assert.equal(guard.write(piece), true);
    guard.uncork();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(drains, 1);
    guard.destroy();
  });

  it('holds at most READ_BUFFER_BYTES for a parser that does not read: the socket is paused until read() is called', async () => {
    const { guard, peer } = await pair();
    let readable = 0;
    guard.on('readable', () => readable++);
    peer.write(connectPacket());
    await eventually(() => readable === 1, 'the CONNECT is readable');
    guard.read(null);
    guard.open(never);
    const payload = Buffer.alloc(4000, 2);
    const sent = Buffer.concat(Array.from({ length: 40 }, () => publishPacket(payload)));
    peer.write(sent);
    await eventually(() => guard.socket.isPaused(), 'the socket paused');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const waiting = guard.read(null)!;
    assert.ok(waiting.length >= READ_BUFFER_BYTES, `${waiting.length} bytes waited`);
    assert.ok(waiting.length < READ_BUFFER_BYTES + 70_000, `${waiting.length} bytes waited: at most one read more than the buffer`);
    assert.equal(guard.socket.isPaused(), false, 'read() resumes the socket');
    let total = waiting.length;
    await eventually(() => {
      total += guard.read(null)?.length ?? 0;
      return total === sent.length;
    }, 'everything arrives once read');
    guard.destroy();
  });

  it('answers a lone PINGREQ itself once open, and refuses a second CONNECT-less stream', async () => {
    const { guard, peer, refused } = await pair();
    const read = reader(guard);
    peer.write(connectPacket(5));
    await eventually(() => read.bytes().length > 0, 'the CONNECT passed');
    let pings = 0;
    guard.open(never, () => pings++);
    const answer = once(peer, 'data');
    peer.write(Buffer.from([0xc0, 0x00]));
    assert.deepEqual((await answer)[0], Buffer.from([0xd0, 0x00]));
    assert.equal(pings, 1);
    const other = await pair();
    other.peer.write(publishPacket('no connect'));
    await eventually(() => other.refused.length === 1, 'refused');
    assert.equal(other.refused[0]!.code, 'not_connect');
    assert.equal(refused.length, 0);
    guard.destroy();
    other.guard.destroy();
  });

  it('ends once: destroy() closes the socket, emits error only to a listener and close once, and drops later writes', async () => {
    const { guard, peer } = await pair();
    let closes = 0;
    guard.on('close', () => closes++);
    // No 'error' listener: an error does not throw.
    guard.destroy(new Error('first'));
    guard.destroy(new Error('second'));
    assert.equal(guard.destroyed, true);
    assert.equal(guard.write(Buffer.from('late')), false);
    assert.equal(guard.writable, false);
    await eventually(() => peer.destroyed, 'the peer saw the connection end');
    await tick();
    assert.equal(closes, 1);
    assert.equal(guard.socket.destroyed, true);

    const second = await pair();
    const errors: string[] = [];
    second.guard.on('error', (e: Error) => errors.push(e.message));
    const closed = new Promise((resolve) => second.guard.once('close', resolve));
    second.peer.resetAndDestroy();
    await closed;
    assert.deepEqual(errors, ['read ECONNRESET'], 'the socket error, to the listener, once');
    assert.equal(second.guard.destroyed, true);
  });
});
