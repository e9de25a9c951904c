/**
 * Transport guards in front of the MQTT parser, which has no packet size limit of its own and
 * would buffer a 256 MB "remaining length" whole:
 *   - PacketSizeGuard: a Duplex around the TLS socket that reads each MQTT fixed header as bytes
 *     pass and closes the connection the moment a packet announces more than the limit (or a
 *     malformed length), before its body is buffered anywhere.
 *     It can also stop reading for a while (`hold`): a device publishing beyond its rate is not
 *     read until it is back within it, so a flood costs the broker its allowed rate, not line rate.
 *   - TokenBucket: rate limits (connects per second on the listener; messages, readings and bytes per device).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export class PacketTooLargeError extends Error {
  constructor(readonly size: number, readonly limit: number) {
    super(`MQTT packet of ${size} bytes exceeds the ${limit}-byte limit`);
  }
}

/**
 * Tracks packet boundaries across chunks: state is "reading a fixed header" (type byte plus a
 * 1-4 byte variable-length integer) or "skipping N body bytes".
 */
export class PacketSizeScanner {
  private skip = 0;
  private headerBytes = 0;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly limit: number) {}

  /** Throws when a packet is too large or its length malformed. */
  scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.headerBytes === 0) {
        this.headerBytes = 1; // the packet type byte
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerBytes++;
      if (byte & 0x80) {
        if (this.headerBytes > 4) throw new PacketTooLargeError(Number.POSITIVE_INFINITY, this.limit);
        continue;
      }
      if (this.length > this.limit) throw new PacketTooLargeError(this.length, this.limit);
      this.skip = this.length;
      this.headerBytes = 0;
    }
  }
}

export const READ_BUFFER_BYTES = 16 * 1024;

/** The TLS (or TCP) socket as the broker sees it, with every incoming packet's size checked. */
export class PacketSizeGuard extends Duplex {
  private readonly scanner: PacketSizeScanner;
  private holdTimer: NodeJS.Timeout | null = null;
  private heldUntil = 0;

  constructor(
    readonly socket: Socket,
    limit: number,
    onRefused: (error: PacketTooLargeError) => void,
  ) {
    // 16 KB buffered towards the parser at most (Node 22's default would be 64 KB): Aedes handles
    // every packet of a read at once, so this bounds what one connection has in flight.
    super({ allowHalfOpen: false, readableHighWaterMark: READ_BUFFER_BYTES });
    this.scanner = new PacketSizeScanner(limit);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.scanner.scan(chunk);
      } catch (error) {
        onRefused(error as PacketTooLargeError);
        socket.destroy();
        return;
      }
      if (!this.push(chunk) || this.holdTimer) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (error) => this.destroy(error));
  }

  /** Stops reading from the socket for `ms` (what is already buffered is still delivered). */
  hold(ms: number): void {
    const until = Date.now() + ms;
    if (until <= this.heldUntil || this.destroyed) return;
    this.heldUntil = until;
    this.socket.pause();
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      // Resume only if the reader wants more (otherwise _read will, when it does).
      if (!this.destroyed && this.readableLength < this.readableHighWaterMark) this.socket.resume();
    }, ms);
    this.holdTimer.unref();
  }

  override _read(): void {
    if (!this.holdTimer) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  /** mqtt-packet writes a packet in several pieces under cork(): hand them to TLS as one record. */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.socket.write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.socket.destroy();
    callback(error);
  }
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
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
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
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }
}
