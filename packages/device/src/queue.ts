/**
 * The outgoing queue: every QoS 1 message a device sends (telemetry, state reports, command
 * results) goes in first and leaves only when the broker's PUBACK for it arrives, so a message
 * survives a lost connection, a broker restart and, with FileQueue, a device restart. Messages
 * are sent in queue order. The queue is bounded by the bytes of unacknowledged messages: beyond
 * the bound `append` throws QueueFullError and the caller decides what to drop.
 *
 * FileQueue keeps a directory of append-only segment files of JSON lines, `{"s":seq,"t":topic,
 * "p":payload}` for a message and `{"a":seq}` for its acknowledgement. A segment is deleted once
 * every message in it is acknowledged and it is not the one being written; a torn last line (a
 * crash mid-write) is cut off when the queue opens.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { QueueFullError } from './errors.js';

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
  /** Adds a message at the end; throws QueueFullError at the bound. */
  append(topic: string, payload: string): QueuedMessage;
  /** The first unacknowledged message with a sequence number above `seq` (-1: the oldest). */
  after(seq: number): QueuedMessage | undefined;
  /** Removes the message: its PUBACK arrived. */
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
    this.acked.add(seq);
    this.pendingBytes -= cost(message);
    while (this.head < this.records.length && this.acked.has(this.records[this.head]!.seq)) this.acked.delete(this.records[this.head++]!.seq);
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    this.acknowledged(seq);
  }

  close(): void {}

  /** Adds a message read back or appended to the in-memory index. */
  protected index(message: QueuedMessage): void {
    this.records.push(message);
    this.pendingBytes += cost(message);
  }

  /** Hook: write the message durably before it counts as queued. */
  protected persist(_message: QueuedMessage): void {}

  /** Hook: record the acknowledgement. */
  protected acknowledged(_seq: number): void {}

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
  private activeBytes = 0;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  /** Lines that did not parse when the queue opened (skipped). */
  readonly corruptLines: number = 0;

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
    const names = readdirSync(dir).filter((n) => SEGMENT.test(n)).sort();
    for (const name of names) {
      const segment: Segment = { first: Number(SEGMENT.exec(name)![1]), path: join(dir, name), last: -1 };
      const text = readFileSync(segment.path, 'utf8');
      const complete = text.lastIndexOf('\n') + 1;
      // A crash in the middle of a write leaves a line without its newline: cut it off.
      if (complete < text.length) truncateSync(segment.path, Buffer.byteLength(text.slice(0, complete)));
      for (const line of text.slice(0, complete).split('\n')) {
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
    if (this.activeBytes >= this.segmentBytes) this.rotate();
    this.write(`${JSON.stringify({ s: message.seq, t: message.topic, p: message.payload })}\n`);
    if (this.fsync) fsyncSync(this.fd!);
    this.segments.at(-1)!.last = message.seq;
  }

  protected override acknowledged(seq: number): void {
    // Not flushed: a lost acknowledgement only means the message is sent again (at least once).
    if (this.fd !== null) this.write(`${JSON.stringify({ a: seq })}\n`);
    if (this.size === 0 && this.activeBytes >= this.segmentBytes) this.rotate();
    this.collect();
  }

  private write(line: string): void {
    if (this.fd === null) throw new Error('the queue is closed');
    const bytes = Buffer.from(line);
    writeSync(this.fd, bytes);
    this.activeBytes += bytes.length;
  }

  /** Starts a new segment named after the next sequence number. */
  private rotate(): void {
    if (this.fd !== null) closeSync(this.fd);
    const path = join(this.dir, `${String(this.nextSeq).padStart(16, '0')}.seg`);
    this.fd = openSync(path, 'a', 0o600);
    this.activeBytes = 0;
    this.segments.push({ first: this.nextSeq, path, last: -1 });
  }

  /** Deletes the oldest segments whose messages are all acknowledged. */
  private collect(): void {
    const oldest = this.oldest;
    while (this.segments.length > 1 && (oldest === null || this.segments[0]!.last < oldest)) unlinkSync(this.segments.shift()!.path);
  }
}
