/**
 * Group commit for telemetry: messages that arrive while a batch is being written wait for the
 * next one, and a batch starts one event-loop turn after its first message (no timer), so under
 * load every transaction carries many messages and when idle a message is written at once. `write` resolves only once the rows are committed: the
 * broker acknowledges a QoS 1 message then, and not before.
 *
 * The queue is bounded. Past `maxPending` rows a QoS 1 write waits for room (the broker then
 * holds its PUBACK, and a well-behaved client slows down within its in-flight window), while a
 * QoS 0 write is dropped and counted: nothing grows without bound under overload.
 */
import type { TelemetryRow, TelemetryStore } from './store.js';

export interface IngestOptions {
  /** Rows per transaction at most. */
  maxBatch: number;
  /** Rows queued (not yet being written) before writers wait or drop. */
  maxPending: number;
}

export const DEFAULT_INGEST: IngestOptions = { maxBatch: 5000, maxPending: 50_000 };

interface Pending {
  rows: TelemetryRow[];
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface IngestStats {
  committedRows: number;
  committedBatches: number;
  droppedRows: number;
  failedBatches: number;
  pendingRows: number;
}

export class TelemetryWriter {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private writing = false;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  readonly stats: IngestStats = { committedRows: 0, committedBatches: 0, droppedRows: 0, failedBatches: 0, pendingRows: 0 };

  constructor(
    private readonly store: TelemetryStore,
    private readonly options: IngestOptions = DEFAULT_INGEST,
  ) {}

  /** Queues rows and resolves when they are committed; waits for room first when the queue is full. */
  async write(rows: TelemetryRow[]): Promise<void> {
    while (this.queuedRows >= this.options.maxPending) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    return this.enqueue(rows);
  }

  /** For QoS 0: queues rows unless the queue is full, in which case they are dropped (returns false). */
  offer(rows: TelemetryRow[]): boolean {
    if (this.queuedRows >= this.options.maxPending) {
      this.stats.droppedRows += rows.length;
      return false;
    }
    this.enqueue(rows).catch(() => undefined);
    return true;
  }

  /** Resolves once everything queued so far is written (shutdown). */
  async drain(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(rows: TelemetryRow[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.queuedRows += rows.length;
      this.stats.pendingRows = this.queuedRows;
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      // One turn of the event loop first: messages that arrived in the same I/O poll (other
      // connections' packets already read) join this batch instead of each paying a commit.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch: Pending[] = [];
      let count = 0;
      while (this.queue.length > 0 && (count === 0 || count + this.queue[0]!.rows.length <= this.options.maxBatch)) {
        const next = this.queue.shift()!;
        batch.push(next);
        count += next.rows.length;
      }
      this.queuedRows -= count;
      this.stats.pendingRows = this.queuedRows;
      this.wakeWriters();
      try {
        await this.store.insertBatch(batch.flatMap((p) => p.rows));
        this.stats.committedRows += count;
        this.stats.committedBatches++;
        for (const p of batch) p.resolve();
      } catch (error) {
        this.stats.failedBatches++;
        for (const p of batch) p.reject(error as Error);
      }
    }
    this.writing = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private wakeWriters(): void {
    while (this.roomWaiters.length > 0 && this.queuedRows < this.options.maxPending) this.roomWaiters.shift()!();
  }
}
