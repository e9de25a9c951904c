/**
 * MQTT framing read straight off the bytes, for the transport guard (guard.ts), which must judge
 * packets before the MQTT parser buffers them:
 *   - PacketScanner: where each packet starts and ends (fixed header: a type byte and a 1-4 byte
 *     remaining length), refusing a packet the moment its header announces more than the limit;
 *     it can stop at the end of a packet (the guard holds what follows a CONNECT) and show a
 *     packet's body to a reader as it streams past;
 *   - ConnectVersionReader and FilterCounter: the two body readers the guard needs (the protocol
 *     level of a CONNECT; how many topic filters a SUBSCRIBE or UNSUBSCRIBE carries, with the QoS
 *     a SUBSCRIBE asks for lowered to 1);
 *   - withMaximumQos1: the one change made to a packet Aedes writes (MQTT 5 CONNACK).
 */

/** MQTT control packet types (the high nibble of the first byte). */
export const PACKET = { connect: 1, connack: 2, publish: 3, subscribe: 8, unsubscribe: 10 } as const;

export type FrameErrorCode = 'too_large' | 'not_connect' | 'too_many_filters' | 'qos_not_supported' | 'rate_exceeded';

/** A packet (or a stream of them) the guard refuses; the connection ends. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A packet larger than the limit, or a remaining length that is not a valid MQTT length. */
export class PacketTooLargeError extends FrameError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('too_large', `MQTT packet of ${size} bytes exceeds the ${limit}-byte limit`);
  }
}

/** Reads the bytes of one packet's body as they pass (in pieces, in order). */
/** Reads a packet's body as it streams past (a method, not a closure: a guard holds one per connection). */
export interface BodyReader {
  read(bytes: Buffer): void;
}

/**
 * What the scanner's owner says about a packet once its header is read: nothing (pass its body),
 * or a reader for its body and whether to halt at the end of this packet (until resume()). It may
 * throw a FrameError to refuse the packet before any of its body is passed on.
 */
export interface HeaderVisitor {
  visitHeader(type: number, flags: number, length: number): void | { read?: BodyReader; stop?: boolean };
}

/** Tracks packet boundaries across chunks: "reading a fixed header" or "passing N body bytes". */
export class PacketScanner {
  private skip = 0;
  private headerBytes = 0;
  private first = 0;
  private length = 0;
  private multiplier = 1;
  private reader: BodyReader | null = null;
  private stopAtEnd = false;
  /** At the end of a packet the visitor asked to stop after; scan() consumes nothing until resume(). */
  halted = false;

  constructor(private readonly limit: number) {}

  /**
   * Scans `chunk` from `from`; returns where it stopped (the chunk's length unless it halted
   * inside it). Throws PacketTooLargeError (or the visitor's FrameError) to refuse.
   */
  scan(chunk: Buffer, visit?: HeaderVisitor, from = 0): number {
    let i = from;
    while (i < chunk.length && !this.halted) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.reader?.read(chunk.subarray(i, i + n));
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.endPacket();
        continue;
      }
      const byte = chunk[i++]!;
      if (this.headerBytes === 0) {
        this.headerBytes = 1;
        this.first = byte;
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
      this.headerBytes = 0;
      const verdict = visit?.visitHeader(this.first >> 4, this.first & 0x0f, this.length);
      this.stopAtEnd = verdict?.stop === true;
      this.reader = verdict?.read ?? null;
      this.skip = this.length;
      if (this.skip === 0) this.endPacket();
    }
    return i;
  }

  resume(): void {
    this.halted = false;
  }

  /** Between packets: the next byte scanned starts a fixed header. */
  get atPacketStart(): boolean {
    return this.skip === 0 && this.headerBytes === 0;
  }

  private endPacket(): void {
    this.reader = null;
    if (this.stopAtEnd) this.halted = true;
    this.stopAtEnd = false;
  }
}

/** Reads a CONNECT body up to its protocol level: 3 (3.1), 4 (3.1.1) or 5. */
export class ConnectVersionReader implements BodyReader {
  private readonly head: number[] = [];
  version: number | null = null;

  read(bytes: Buffer): void {
    for (let i = 0; i < bytes.length && this.version === null; i++) {
      this.head.push(bytes[i]!);
      // Protocol name (2-byte length, then the name), then the level byte.
      if (this.head.length >= 2 && this.head.length === 2 + ((this.head[0]! << 8) | this.head[1]!) + 1) this.version = this.head.at(-1)!;
    }
  }
}

/**
 * Counts the topic filters of a SUBSCRIBE or UNSUBSCRIBE body as it streams past: a 2-byte packet
 * ID, MQTT 5 properties (a variable-length size, then that many bytes), then the entries: a
 * 2-byte length, the filter, and (SUBSCRIBE only) one options byte. A SUBSCRIBE asking for QoS 2
 * is lowered to QoS 1 in place (the broker serves QoS 1 at most, and its SUBACK grants what was
 * asked); the other option bits are kept.
 */
export class FilterCounter implements BodyReader {
  count = 0;
  private phase: 'id' | 'propertiesLength' | 'skip' | 'length' | 'options' = 'id';
  private need = 2;
  private value = 0;
  private multiplier = 1;
  /** Whether the bytes being skipped are a filter (followed by its options byte in a SUBSCRIBE). */
  private inEntry = false;

  constructor(
    private readonly version: number,
    private readonly withOptions: boolean,
  ) {}

  read(bytes: Buffer): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.phase === 'skip') {
        const n = Math.min(this.need, bytes.length - i);
        this.need -= n;
        i += n;
        if (this.need === 0) this.afterSkip();
        continue;
      }
      const byte = bytes[i++]!;
      switch (this.phase) {
        case 'id':
          if (--this.need === 0) this.afterId();
          break;
        case 'propertiesLength':
          this.value += (byte & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          if (!(byte & 0x80)) this.startSkip(this.value, false);
          break;
        case 'length':
          if (this.need === 2) this.count++;
          this.value = (this.value << 8) | byte;
          if (--this.need === 0) this.startSkip(this.value, true);
          break;
        case 'options':
          if ((byte & 0x03) === 2) bytes[i - 1] = (byte & 0xfc) | 1;
          this.startEntry();
          break;
      }
    }
  }

  private afterId(): void {
    if (this.version === 5) {
      this.phase = 'propertiesLength';
      this.value = 0;
      this.multiplier = 1;
    } else this.startEntry();
  }

  private startSkip(n: number, entry: boolean): void {
    this.inEntry = entry;
    this.need = n;
    this.phase = 'skip';
    if (n === 0) this.afterSkip();
  }

  private afterSkip(): void {
    if (this.inEntry && this.withOptions) this.phase = 'options';
    else this.startEntry();
  }

  private startEntry(): void {
    this.phase = 'length';
    this.need = 2;
    this.value = 0;
  }
}

/** The bytes of a variable-length integer (MQTT 1.5.5). */
export function encodeLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** Reads a variable-length integer at `at`: its value and the index after it (null if malformed or cut). */
function decodeLength(bytes: Buffer, at: number): { value: number; next: number } | null {
  let value = 0;
  let multiplier = 1;
  for (let i = at; i < bytes.length && i < at + 4; i++) {
    value += (bytes[i]! & 0x7f) * multiplier;
    multiplier *= 128;
    if (!(bytes[i]! & 0x80)) return { value, next: i + 1 };
  }
  return null;
}

const MAXIMUM_QOS_PROPERTY = 0x24;

/**
 * An MQTT 5 CONNACK that accepts the connection, with Maximum QoS 1 added to its properties (MQTT
 * 3.2.2.3.4: the client must then not publish QoS 2). Anything else is returned unchanged.
 */
export function withMaximumQos1(packet: Buffer): Buffer {
  if (packet[0] !== PACKET.connack << 4) return packet;
  const remaining = decodeLength(packet, 1);
  if (!remaining || remaining.next + remaining.value !== packet.length || remaining.value < 3) return packet;
  const reasonCode = packet[remaining.next + 1];
  const properties = decodeLength(packet, remaining.next + 2);
  if (reasonCode !== 0 || !properties || properties.next + properties.value !== packet.length) return packet;
  const body = packet.subarray(properties.next);
  const newProperties = encodeLength(properties.value + 2);
  const newRemaining = 2 + newProperties.length + properties.value + 2;
  return Buffer.concat([
    Buffer.from([packet[0]!, ...encodeLength(newRemaining), packet[remaining.next]!, reasonCode, ...newProperties]),
    body,
    Buffer.from([MAXIMUM_QOS_PROPERTY, 1]),
  ]);
}
