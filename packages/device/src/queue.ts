/**
 * The outgoing queue: every QoS 1 message a device sends (telemetry, state reports, command
 * results) goes in first and leaves only when the broker's PUBACK for it arrives, so a message
 * survives a lost connection, a broker restart and, with FileQueue, a device restart. Messages
 * are sent in queue order. The queue is bounded by the bytes of unacknowledged messages: beyond
 * the bound `append` throws QueueFullError and the caller decides what to drop.
 *
 * FileQueue keeps a directory of append-only segment files of JSON lines, `{"s":seq,"t":topic,
 * "p":payload}` for a message and `{"a":seq}` for its acknowledgement. A segment is deleted once
 * every message in it is acknowledged and it is not the one being written. A line is appended
 * whole or not at all: a write the file system cuts short (a full disk) is cut back off and
 * QueueWriteError thrown, so what `append` returned from is stored and what it threw for is not.
 * A torn last line (a crash mid-write) is cut off when the queue opens, and counted.
 */
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { QueueClosedError, QueueFullError, QueueWriteError } from './errors.js';
import { fsyncDir } from './updates/durable.js';

export interface QueuedMessage {
  seq: number;
  /** Topic below `d/<device ID>/`, e.g. `telemetry`. */
  topic: string;
  payload: string;
}

export interface MessageQueue {
  /** Unacknowledged messages. */
  readonly size: number;
  /** Bytes of unacknowledged messages. */
  readonly bytes: number;
  /** Adds a message at the end; throws a QueueError (QueueFullError at the bound) when it did not. */
  append(topic: string, payload: string): QueuedMessage;
  /** The first unacknowledged message with a sequence number above `seq` (-1: the oldest). */
  after(seq: number): QueuedMessage | undefined;
  /** Removes the message: its PUBACK arrived. Throws a QueueError when that cannot be recorded: the message then stays. */
  ack(seq: number): void;
  close(): void;
}

export interface QueueOptions {
  /** Bound on unacknowledged bytes (default 16 MiB). */
  maxBytes?: number;
}

const cost = (m: QueuedMessage): number => m.topic.length + Buffer.byteLength(m.payload);

/** The ordered index of unacknowledged messages, shared by both queues. */
export class MemoryQueue implements MessageQueue {
  protected records: QueuedMessage[] = [];
  private head = 0;
  private readonly acked = new Set<number>();
  private pendingBytes = 0;
  protected nextSeq = 0;
  readonly maxBytes: number;

  constructor(options: QueueOptions = {}) {
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  }

  get size(): number {
    return this.records.length - this.head - this.acked.size;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  /** The lowest unacknowledged sequence number, or null when empty. */
  get oldest(): number | null {
    return this.after(-1)?.seq ?? null;
  }

  append(topic: string, payload: string): QueuedMessage {
    const message = { seq: this.nextSeq, topic, payload };
    if (this.pendingBytes + cost(message) > this.maxBytes) throw new QueueFullError(this.maxBytes);
    this.persist(message);
    this.nextSeq++;
    this.index(message);
    return message;
  }

  after(seq: number): QueuedMessage | undefined {
    let lo = this.head;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    while (lo < this.records.length && this.acked.has(this.records[lo]!.seq)) lo++;
    return this.records[lo];
  }

  ack(seq: number): void {
    const message = this.find(seq);
    if (!message || this.acked.has(seq)) return;
    this.persistAck(seq);
    this.acked.add(seq);
    this.pendingBytes -= cost(message);
    while (this.head < this.records.length && this.acked.has(this.records[this.head]!.seq))
      this.acked.delete(this.records[this.head++]!.seq);
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    this.acknowledged();
  }

  close(): void {}

  /** Adds a message read back or appended to the in-memory index. */
  protected index(message: QueuedMessage): void {
    this.records.push(message);
    this.pendingBytes += cost(message);
  }

  /** Hook: write the message durably before it counts as queued. */
  protected persist(_message: QueuedMessage): void {}

  /** Hook: record the acknowledgement durably before it counts. */
  protected persistAck(_seq: number): void {}

  /** Hook: an acknowledgement was recorded. */
  protected acknowledged(): void {}

  private find(seq: number): QueuedMessage | undefined {
    const candidate = this.after(seq - 1);
    return candidate?.seq === seq ? candidate : undefined;
  }
}

export interface FileQueueOptions extends QueueOptions {
  /** A segment is closed for writing beyond this many bytes (default 1 MiB). */
  segmentBytes?: number;
  /** fsync every appended message before it counts as queued (default true: it survives power loss). */
  fsync?: boolean;
}

interface Segment {
  first: number;
  path: string;
  /** Highest message sequence number in the segment (-1: none). */
  last: number;
}

const SEGMENT = /^(\d{16})\.seg$/;

export class FileQueue extends MemoryQueue {
  private readonly segments: Segment[] = [];
  private fd: number | null = null;
  /** Length of the segment being written, up to the end of its last whole line. */
  private activeBytes = 0;
  /** A failed append left bytes after activeBytes that could not be cut off yet: cut before the next write. */
  private fragment = false;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  /** Lines that did not parse when the queue opened (skipped). */
  readonly corruptLines: number = 0;
  /** Incomplete last lines (a write interrupted by a crash) cut off when the queue opened. */
  readonly tornLines: number = 0;

  constructor(
    readonly dir: string,
    options: FileQueueOptions = {},
  ) {
    super(options);
    this.segmentBytes = options.segmentBytes ?? 1024 * 1024;
    this.fsync = options.fsync ?? true;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const acks: number[] = [];
    let corrupt = 0;
    let torn = 0;
    const names = readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .sort();
    for (const name of names) {
      const segment: Segment = { first: Number(SEGMENT.exec(name)![1]), path: join(dir, name), last: -1 };
      const data = readFileSync(segment.path);
      const complete = data.lastIndexOf(0x0a) + 1;
      // A crash in the middle of a write leaves a line without its newline: cut it off, so that
      // the next line appended is not glued to it.
      if (complete < data.length) {
        truncateSync(segment.path, complete);
        torn++;
      }
      for (const line of data.subarray(0, complete).toString('utf8').split('\n')) {
        if (!line) continue;
        let entry: { s?: number; t?: string; p?: string; a?: number };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          corrupt++;
          continue;
        }
        if (typeof entry.a === 'number') acks.push(entry.a);
        else if (typeof entry.s === 'number' && typeof entry.t === 'string' && typeof entry.p === 'string') {
          this.index({ seq: entry.s, topic: entry.t, payload: entry.p });
          segment.last = Math.max(segment.last, entry.s);
        } else corrupt++;
      }
      this.segments.push(segment);
    }
    this.corruptLines = corrupt;
    this.tornLines = torn;
    this.records.sort((a, b) => a.seq - b.seq);
    const lastSegment = this.segments.at(-1);
    this.nextSeq = Math.max(this.records.at(-1)?.seq ?? -1, (lastSegment?.first ?? 0) - 1) + 1;
    for (const seq of acks) super.ack(seq);
    if (lastSegment) {
      this.fd = openSync(lastSegment.path, 'a', 0o600);
      this.activeBytes = statSync(lastSegment.path).size;
    } else this.rotate();
    this.collect();
  }

  override close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  protected override persist(message: QueuedMessage): void {
    if (this.fd === null) throw new QueueClosedError();
    if (this.activeBytes >= this.segmentBytes) this.rotate();
    this.write(`${JSON.stringify({ s: message.seq, t: message.topic, p: message.payload })}\n`, this.fsync);
    this.segments.at(-1)!.last = message.seq;
  }

  protected override persistAck(seq: number): void {
    // Not flushed: a lost acknowledgement only means the message is sent again (at least once).
    if (this.fd !== null) this.write(`${JSON.stringify({ a: seq })}\n`, false);
  }

  protected override acknowledged(): void {
    if (this.size === 0 && this.activeBytes >= this.segmentBytes) {
      try {
        this.rotate();
      } catch {
        // Only an early start of the next segment: the next append rotates, or reports why it cannot.
      }
    }
    this.collect();
  }

  /** Appends `line` whole (and flushes it) or, when any part of that fails, leaves the segment as it was and throws QueueWriteError. */
  private write(line: string, flush: boolean): void {
    const fd = this.fd!;
    const bytes = Buffer.from(line);
    try {
      this.cutFragment();
      // A full disk can take part of a line: write the rest, which then fails or completes it.
      for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
      if (flush) fsyncSync(fd);
    } catch (error) {
      this.fragment = true;
      try {
        this.cutFragment();
      } catch {
        // Still flagged: cut before anything else is written to this segment.
      }
      throw new QueueWriteError(this.segments.at(-1)!.path, error as NodeJS.ErrnoException);
    }
    this.activeBytes += bytes.length;
  }

  /** Truncates the segment back to its last whole line after a failed append. */
  private cutFragment(): void {
    if (!this.fragment) return;
    ftruncateSync(this.fd!, this.activeBytes);
    this.fragment = false;
  }

  /** Starts a new segment named after the next sequence number; on failure the current one stays. */
  private rotate(): void {
    const path = join(this.dir, `${String(this.nextSeq).padStart(16, '0')}.seg`);
    let fd: number | null = null;
    try {
      if (this.fd !== null) this.cutFragment();
      fd = openSync(path, 'a', 0o600);
      // The new file's directory entry too: else a power cut could take the file with what it holds.
      if (this.fsync) fsyncDir(this.dir);
    } catch (error) {
      if (fd !== null) closeSync(fd);
      throw new QueueWriteError(path, error as NodeJS.ErrnoException);
    }
    if (this.fd !== null) closeSync(this.fd);
    this.fd = fd;
    this.activeBytes = 0;
    this.segments.push({ first: this.nextSeq, path, last: -1 });
  }

  /** Deletes the oldest segments whose messages are all acknowledged. */
  private collect(): void {
    const oldest = this.oldest;
    while (this.segments.length > 1 && (oldest === null || this.segments[0]!.last < oldest)) unlinkSync(this.segments.shift()!.path);
  }
}
