/**
 * The transport guard in front of the MQTT parser (Aedes), which would buffer a 256 MB
 * "remaining length" whole, handles packets that arrive before authentication is over, and
 * accepts anything it can parse. ConnectionGuard stands between each TLS (or TCP) socket and Aedes,
 * reads the MQTT framing as bytes pass (frames.ts) and:
 *   - closes the connection the moment a packet announces more than the limit (or a malformed
 *     length), before its body is buffered anywhere; the CONNECT has its own, smaller limit;
 *   - passes the CONNECT on and holds everything after it until the broker has answered it
 *     (open(), once the CONNACK accepting it is out), so that no packet is handled before
 *     authentication and none at all for a client that is refused (MQTT 3.1.1 §3.1.4). Holding
 *     stops reading the socket: what waits in memory is the rest of the read that carried the
 *     CONNECT (at most 16 KB over TLS, 64 KB over TCP); the client's further packets wait in
 *     its own buffers;
 *   - refuses, once open, a PUBLISH with QoS 2 (the broker supports QoS 0 and 1; MQTT 5 clients
 *     are told Maximum QoS 1 in the CONNACK, which is amended here) and a SUBSCRIBE or UNSUBSCRIBE
 *     carrying more filters than the limit;
 *   - charges every packet other than PUBLISH to the session's rate (the broker charges PUBLISH
 *     itself; a SUBSCRIBE or UNSUBSCRIBE costs one more per filter), and stops reading for a while
 *     (`hold`) when the session is over it: a flood costs the broker the allowed rate, not line
 *     rate; far beyond it, the connection is refused;
 *   - answers a PINGREQ that arrives alone (an idle device's keep-alive: one TLS record holding
 *     the 2 bytes) itself: PINGRESP straight onto the socket, and the broker's keep-alive timer
 *     refreshed through `onPing`, without the stream, parser and handler round through the broker.
 *     A fleet's keep-alives are most of what an idle node does (issue 21).
 * A refusal stops reading; `onRefused` decides how the connection ends (a DISCONNECT with a
 * reason code for MQTT 5 when a session exists, otherwise a close).
 * TokenBucket: a rate limit (connects per second on the listener); its arithmetic (`refilled`,
 * `debtMs`) is also that of each device's meter (device-meters.ts: packets, telemetry readings,
 * payload bytes and connects).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  ConnectVersionReader,
  FilterCounter,
  FrameError,
  PACKET,
  PacketScanner,
  PacketTooLargeError,
  withMaximumQos1,
  type BodyReader,
  type HeaderVisitor,
} from './frames.js';
import { eventsInShape } from './emitter-shape.js';

export const READ_BUFFER_BYTES = 16 * 1024;
/** A session this far behind its rate is disconnected rather than held further. */
export const MAX_RATE_DEBT_MS = 10_000;

export interface GuardLimits {
  maxPacketBytes: number;
  maxConnectBytes: number;
  maxFiltersPerSubscribe: number;
}

/** What the guard charges a session's packets to (its packet TokenBucket): how long (ms) the session is behind after one more. */
export interface RateMeter {
  borrow(now: number): number;
}

const PINGREQ = 0xc0;
const PINGRESP = Buffer.from([0xd0, 0x00]);
/** The guard of a socket, on the socket: its listeners are shared functions, not four closures per connection. */
const GUARD = Symbol('bulwark.connectionGuard');
type GuardedSocket = Socket & { [GUARD]: ConnectionGuard };

type GuardState = 'connect' | 'held' | 'open' | 'refused';
/** The events Aedes and stream.finished() listen to on a connection. */
const GUARD_EVENTS = ['readable', 'error', 'close', 'end', 'finish', 'drain'] as const;

/**
 * The connection Aedes is handed: the part of a Duplex stream it uses (read() on 'readable',
 * write() under cork(), 'drain', destroy(), 'error' and 'close'), over the socket, without a
 * stream's two states, buffers and bound callbacks (an idle connection holds one of these for as
 * long as it lasts: issue 21). So it holds no closure of its own either: the socket's listeners are
 * static methods, the scanner's visitor is the guard itself, the broker's hooks are shared functions
 * given the guard, and what only the CONNECT needed is dropped once it passed.
 *
 * What it reads waits in `pending` until Aedes reads it (at most READ_BUFFER_BYTES: past that, the
 * socket is paused until Aedes reads). It never emits 'end': the socket ends itself on the peer's
 * FIN (no half-open connections) and its 'close' is the connection's (slimClient drops the 'end'
 * listener Aedes adds). It emits 'error' only to a listener (Aedes's, while the client lives).
 */
export class ConnectionGuard extends EventEmitter implements HeaderVisitor {
  private readonly scanner: PacketScanner;
  private state: GuardState = 'connect';
  /** What arrived behind the CONNECT, until the broker answers it (null: nothing). */
  private held: Buffer[] | null = null;
  /** Read from the socket, passed by the guard, not yet read by Aedes (joined once, when read). */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  /** A 'readable' is due on the next tick (Aedes reads then). */
  private readableDue = false;
  /** The pieces mqtt-packet writes a packet in, under cork(): written to the socket as one at uncork(). */
  private corked: Buffer[] | null = null;
  private corkedBytes = 0;
  private corks = 0;
  /** The socket's 'drain' is relayed once (a write to it answered false). */
  private awaitingDrain = false;
  /** A write under cork answered false: a 'drain' is owed once those bytes are handed to the socket. */
  private owesDrain = false;
  destroyed = false;
  /** Reads the CONNECT's protocol level; dropped once it has passed (`version` keeps what it read). */
  private connect: ConnectVersionReader | null = new ConnectVersionReader();
  private version: number | null = null;
  private meter: RateMeter | null = null;
  /** Tells the broker a PINGREQ the guard answered arrived (its keep-alive timer restarts). */
  private onPing: ((guard: ConnectionGuard) => void) | null = null;
  private connackAmended = false;
  private holdTimer: NodeJS.Timeout | null = null;
  private heldUntil = 0;
  /** How far behind its rate the session is, after the packets of the chunk being delivered (ms). */
  private behind = 0;

  constructor(
    readonly socket: Socket,
    private readonly limits: GuardLimits,
    private readonly onRefused: (guard: ConnectionGuard, error: FrameError) => void,
  ) {
    super();
    eventsInShape(this, GUARD_EVENTS);
    this.scanner = new PacketScanner(limits.maxPacketBytes);
    (socket as GuardedSocket)[GUARD] = this;
    socket.on('data', ConnectionGuard.onSocketData);
    socket.on('close', ConnectionGuard.onSocketClose);
    socket.on('error', ConnectionGuard.onSocketError);
  }

  private static onSocketData(this: Socket, chunk: Buffer): void {
    (this as GuardedSocket)[GUARD].receive(chunk);
  }

  private static onSocketClose(this: Socket): void {
    (this as GuardedSocket)[GUARD].destroy();
  }

  private static onSocketError(this: Socket, error: Error): void {
    (this as GuardedSocket)[GUARD].destroy(error);
  }

  private static onSocketDrain(this: Socket): void {
    const guard = (this as GuardedSocket)[GUARD];
    guard.awaitingDrain = false;
    ConnectionGuard.emitDrain(guard);
  }

  /** The protocol level of the CONNECT (null until it has passed). */
  get protocolVersion(): number | null {
    return this.version;
  }

  /** For stream.finished(), which Aedes watches the connection with: writable until destroyed. */
  get writable(): boolean {
    return !this.destroyed;
  }

  /**
   * The broker accepted the CONNECT: what was held is passed on, in order, and reading resumes;
   * from now on every packet but PUBLISH is charged to `meter`. With `onPing`, a PINGREQ that
   * arrives alone is answered here and `onPing` called (with this guard) instead of passing it on.
   */
  open(meter: RateMeter, onPing?: (guard: ConnectionGuard) => void): void {
    if (this.state !== 'held') return;
    this.state = 'open';
    this.meter = meter;
    this.onPing = onPing ?? null;
    this.scanner.resume();
    const held = this.held;
    this.held = null;
    if (held !== null) for (const chunk of held) if (this.state === 'open') this.deliver(chunk);
    if (this.state === 'open' && !this.holdTimer && !this.full()) this.socket.resume();
  }

  /** Stops reading from the socket for `ms` (what is already buffered is still delivered). */
  hold(ms: number): void {
    const until = Date.now() + ms;
    if (until <= this.heldUntil || this.destroyed) return;
    this.heldUntil = until;
    this.socket.pause();
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(ConnectionGuard.endHold, ms, this);
    this.holdTimer.unref();
  }

  private static endHold(guard: ConnectionGuard): void {
    guard.holdTimer = null;
    // Resume only if Aedes wants more (otherwise read() will, when it does).
    if (guard.reading() && !guard.full()) guard.socket.resume();
  }

  private reading(): boolean {
    return !this.destroyed && (this.state === 'connect' || this.state === 'open');
  }

  /** As much waits for Aedes as one connection may have in flight. */
  private full(): boolean {
    return this.pendingBytes >= READ_BUFFER_BYTES;
  }

  private receive(chunk: Buffer): void {
    if (this.state === 'open') return this.deliver(chunk);
    if (this.state === 'held') return this.keep(chunk);
    if (this.state === 'refused' || this.destroyed) return;
    let end: number;
    try {
      end = this.scanner.scan(chunk, this);
    } catch (error) {
      return this.refuse(error as FrameError);
    }
    if (!this.scanner.halted) {
      this.pass(chunk);
      return;
    }
    this.state = 'held';
    this.version = this.connect!.version;
    this.connect = null;
    this.socket.pause();
    this.pass(end === chunk.length ? chunk : chunk.subarray(0, end));
    if (end < chunk.length) this.keep(chunk.subarray(end));
  }

  private keep(chunk: Buffer): void {
    this.socket.pause();
    (this.held ??= []).push(chunk);
  }

  private deliver(chunk: Buffer): void {
    if (this.destroyed) return;
    this.behind = 0;
    // A lone PINGREQ between packets, with nothing waiting for the broker ahead of it nor any of
    // the broker's packets part-way out (the PINGRESP goes straight onto the socket).
    const ping =
      this.onPing !== null &&
      chunk.length === 2 &&
      chunk[0] === PINGREQ &&
      chunk[1] === 0 &&
      this.scanner.atPacketStart &&
      this.pending === null &&
      this.corked === null;
    try {
      this.scanner.scan(chunk, this);
    } catch (error) {
      return this.refuse(error as FrameError);
    }
    if (ping) {
      this.onPing!(this);
      this.socket.write(PINGRESP);
    } else this.pass(chunk);
    if (this.behind > 0) this.hold(this.behind);
  }

  /** Passes bytes on to Aedes: they wait in `pending`, and Aedes is told on the next tick (as a Readable would). */
  private pass(chunk: Buffer): void {
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
    if (this.full() || this.holdTimer) this.socket.pause();
    if (this.readableDue) return;
    this.readableDue = true;
    process.nextTick(ConnectionGuard.emitReadable, this);
  }

  private static emitReadable(guard: ConnectionGuard): void {
    guard.readableDue = false;
    if (guard.pending !== null && !guard.destroyed) guard.emit('readable');
  }

  /** What waits for Aedes, all of it (Aedes's parser takes any split); null if nothing does. Reading resumes. */
  read(_size?: number | null): Buffer | null {
    const chunks = this.pending;
    const length = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    if (!this.holdTimer && this.reading()) this.socket.resume();
    if (chunks === null) return null;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
  }

  /**
   * The scanner's visitor. Before the CONNACK: the first packet must be a CONNECT within its limit,
   * and the scan stops at its end. Once open: QoS 2 is refused; every other packet but PUBLISH is
   * charged, a SUBSCRIBE or UNSUBSCRIBE once more per filter (each is work: an ACL check, a matcher
   * entry or a refusal).
   */
  visitHeader(type: number, flags: number, length: number): void | { read?: BodyReader; stop?: boolean } {
    if (this.state === 'connect') {
      if (type !== PACKET.connect) throw new FrameError('not_connect', 'the first packet must be CONNECT');
      if (length > this.limits.maxConnectBytes) throw new PacketTooLargeError(length, this.limits.maxConnectBytes);
      return { read: this.connect!, stop: true };
    }
    if (type === PACKET.publish) {
      if (((flags >> 1) & 3) === 2) throw new FrameError('qos_not_supported', 'QoS 2 is not supported: publish with QoS 0 or 1');
      return;
    }
    this.charge();
    if (type !== PACKET.subscribe && type !== PACKET.unsubscribe) return;
    const counter = new FilterCounter(this.version ?? 4, type === PACKET.subscribe);
    let charged = 0;
    return {
      read: {
        read: (bytes: Buffer) => {
          counter.read(bytes);
          if (counter.count > this.limits.maxFiltersPerSubscribe)
            throw new FrameError(
              'too_many_filters',
              `at most ${this.limits.maxFiltersPerSubscribe} topic filters per SUBSCRIBE or UNSUBSCRIBE`,
            );
          for (; charged < counter.count; charged++) this.charge();
        },
      },
    };
  }

  private charge(): void {
    this.behind = Math.max(this.behind, this.meter?.borrow(Date.now()) ?? 0);
    if (this.behind > MAX_RATE_DEBT_MS) throw new FrameError('rate_exceeded', 'packet rate far beyond the limit');
  }

  private refuse(error: FrameError): void {
    this.state = 'refused';
    this.held = null;
    this.socket.pause();
    this.onRefused(this, error);
  }

  /** mqtt-packet corks the connection around the pieces of a packet and uncorks on the next tick. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks === 0 || --this.corks > 0) return;
    const pieces = this.corked;
    this.corked = null;
    this.corkedBytes = 0;
    const sent = pieces === null || this.send(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
    if (!this.owesDrain) return;
    this.owesDrain = false;
    // Refused by the socket: its 'drain' is relayed (send). Taken at once: the drain promised is due now.
    if (sent && !this.awaitingDrain) process.nextTick(ConnectionGuard.emitDrain, this);
  }

  /**
   * Bytes from Aedes (mqtt-packet writes strings as UTF-8, topics and properties): under cork(),
   * kept for uncork() to hand to TLS as one record; false when the socket wants a 'drain' first.
   * What waits under cork counts towards the socket's high-water mark, as a Writable's own buffer
   * would: a false answer is always followed by a 'drain'.
   */
  write(chunk: Buffer | string, encoding?: BufferEncoding): boolean {
    if (this.destroyed) return false;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk;
    if (this.corks === 0) return this.send(bytes);
    (this.corked ??= []).push(bytes);
    this.corkedBytes += bytes.length;
    if (this.socket.writableLength + this.corkedBytes < this.socket.writableHighWaterMark) return true;
    this.owesDrain = true;
    return false;
  }

  /** Tells Aedes it may write again: the socket's drain relayed, or the one a corked write was promised. */
  private static emitDrain(guard: ConnectionGuard): void {
    if (!guard.destroyed) guard.emit('drain');
  }

  private send(bytes: Buffer): boolean {
    if (this.destroyed) return false;
    if (this.socket.write(this.outgoing(bytes))) return true;
    if (!this.awaitingDrain) {
      this.awaitingDrain = true;
      this.socket.once('drain', ConnectionGuard.onSocketDrain);
    }
    return false;
  }

  /** The first packet out is the CONNACK: an MQTT 5 client is told Maximum QoS 1 there. */
  private outgoing(bytes: Buffer): Buffer {
    if (this.connackAmended) return bytes;
    this.connackAmended = true;
    return this.version === 5 ? withMaximumQos1(bytes) : bytes;
  }

  /** Ends the connection at once: nothing waiting either way is passed on; 'error' (to a listener) and 'close' follow on the next tick. */
  destroy(error?: Error | null): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.held = null;
    this.pending = null;
    this.pendingBytes = 0;
    this.corked = null;
    this.corkedBytes = 0;
    this.owesDrain = false;
    this.socket.destroy();
    process.nextTick(ConnectionGuard.emitDestroyed, this, error ?? null);
    return this;
  }

  private static emitDestroyed(guard: ConnectionGuard, error: Error | null): void {
    if (error && guard.listenerCount('error') > 0) guard.emit('error', error);
    guard.emit('close');
  }
}

/**
 * The token-bucket arithmetic, shared by TokenBucket and the per-device meters (device-meters.ts):
 * `tokens` after `elapsedMs` more at `rate` a second, at most `burst`. A clock that stepped back
 * (an NTP correction) is the caller's to handle: it starts counting again from the new time.
 */
export function refilled(tokens: number, elapsedMs: number, rate: number, burst: number): number {
  return Math.min(burst, tokens + (elapsedMs / 1000) * rate);
}

/** How long (ms) a bucket holding `tokens` (negative: in debt) at `rate` a second takes to be out of debt. */
export function debtMs(tokens: number, rate: number): number {
  return tokens >= 0 ? 0 : (-tokens / rate) * 1000;
}

/** A token bucket: `rate` tokens a second, at most `burst` saved up. Time comes from the caller. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    // The wall clock stepped back (an NTP correction): start counting again from the new time.
    // Waiting for it to pass the old one would hold the device at its current level of debt (no
    // refill) for as long as the step, an hour's step an hour's lock-out.
    if (now < this.last) this.last = now;
    if (now > this.last) {
      this.tokens = refilled(this.tokens, now - this.last, this.rate, this.burst);
      this.last = now;
    }
  }

  /** Whether the bucket has refilled to its burst. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  /** Takes a token if one is there. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes `amount` tokens, going into debt if needed; returns how long the caller should wait (ms). */
  borrow(now: number, amount = 1): number {
    this.refill(now);
    this.tokens -= amount;
    return debtMs(this.tokens, this.rate);
  }
}
