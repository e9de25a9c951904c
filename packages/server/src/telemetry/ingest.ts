/**
 * Group commit for telemetry: messages that arrive while a batch is being written wait for the
 * next one, and a batch starts one event-loop turn after its first message (no timer), so under
 * load every transaction carries many messages and when idle a message is written at once.
 * `write` resolves only once the rows are committed: the broker acknowledges a QoS 1 message
 * then, and not before. (On SQLite a running server commits them on a worker thread of its own,
 * batch-worker.ts; the store decides, see TelemetryStore.writeBatchesWith.)
 *
 * The queue is bounded. Past `maxPending` rows a QoS 1 write waits for room, first come first
 * admitted (the broker then holds its PUBACK, and a well-behaved client slows down within its
 * in-flight window). QoS 0 rows are taken only while the queue is under half full and are written
 * after every queued QoS 1 row: a QoS 0 flood can neither fill the queue nor stand in front of an
 * acknowledged message's commit. What does not fit is dropped and counted.
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
  /** The most rows ever queued at once: at most maxPending plus one message's rows. */
  peakPendingRows: number;
  /** QoS 1 writes waiting for room (their PUBACKs held), and the most at once. */
  waitingWrites: number;
  peakWaitingWrites: number;
}

export class TelemetryWriter {
  /** Acknowledged-on-commit rows (QoS 1), written first. */
  private urgent: Pending[] = [];
  /** Best-effort rows (QoS 0), written after. */
  private bulk: Pending[] = [];
  private queuedRows = 0;
  private writing = false;
  /** The batch being written, if any. */
  private inFlight: Promise<void> | null = null;
  /** Work that runs between two batches (no batch starts until it is done). */
  private quiet: Promise<void> | null = null;
  /** Writes waiting for room, admitted in order (a retry loop of woken writers would starve some). */
  private waiting: Pending[] = [];
  private idleWaiters: (() => void)[] = [];
  readonly stats: IngestStats = {
    committedRows: 0,
    committedBatches: 0,
    droppedRows: 0,
    failedBatches: 0,
    pendingRows: 0,
    peakPendingRows: 0,
    waitingWrites: 0,
    peakWaitingWrites: 0,
  };

  constructor(
    private readonly store: TelemetryStore,
    private readonly options: IngestOptions = DEFAULT_INGEST,
  ) {}

  /** Queues rows and resolves when they are committed; waits for room first when the queue is full. */
  write(rows: TelemetryRow[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending = { rows, resolve, reject };
      if (this.waiting.length === 0 && this.queuedRows < this.options.maxPending) return this.admit(this.urgent, pending);
      this.waiting.push(pending);
      this.stats.waitingWrites = this.waiting.length;
      this.stats.peakWaitingWrites = Math.max(this.stats.peakWaitingWrites, this.waiting.length);
    });
  }

  /** For QoS 0: queues rows while the queue is under half full, else drops them (returns false). */
  offer(rows: TelemetryRow[]): boolean {
    if (this.waiting.length > 0 || this.queuedRows >= this.options.maxPending / 2) {
      this.stats.droppedRows += rows.length;
      return false;
    }
    this.admit(this.bulk, { rows, resolve: noop, reject: noop });
    return true;
  }

  /**
   * Runs `work` once the batch being written (if any) is committed, and starts no batch until it
   * is done: rows keep queuing meanwhile. The SQLite WAL checkpointer uses it to restart the WAL
   * off the event loop (storage/wal-checkpointer.ts).
   */
  between(work: () => Promise<void>): Promise<void> {
    const previous = this.quiet ?? Promise.resolve();
    const run = previous
      .then(() => this.inFlight?.catch(noop))
      .then(work)
      .finally(() => {
        if (this.quiet === run) this.quiet = null;
      });
    this.quiet = run;
    return run;
  }

  /** Resolves once everything queued so far is written (shutdown). */
  async drain(): Promise<void> {
    if (!this.writing && this.queuedRows === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private admit(queue: Pending[], pending: Pending): void {
    queue.push(pending);
    this.queuedRows += pending.rows.length;
    this.stats.pendingRows = this.queuedRows;
    if (this.queuedRows > this.stats.peakPendingRows) this.stats.peakPendingRows = this.queuedRows;
    if (!this.writing) void this.flush();
  }

  /**
   * Takes up to maxBatch rows, QoS 1 first (always at least one message, however large). Each
   * queue gives its first messages in one splice: shift() one at a time is a copy of the whole
   * array each time once it is large (V8 cannot trim a backing store in large-object space, past
   * about 16,000 entries), 5,000 shifts of a 20,000-message queue cost 85 ms of event loop.
   */
  private take(): { batch: Pending[]; count: number } {
    let batch: Pending[] = [];
    let count = 0;
    for (const queue of [this.urgent, this.bulk]) {
      let n = 0;
      while (n < queue.length && (count === 0 || count + queue[n]!.rows.length <= this.options.maxBatch)) count += queue[n++]!.rows.length;
      if (n === 0) continue;
      const taken = queue.splice(0, n);
      batch = batch.length === 0 ? taken : batch.concat(taken);
    }
    return { batch, count };
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.queuedRows > 0) {
      // One turn of the event loop first: messages that arrived in the same I/O poll (other
      // connections' packets already read) join this batch instead of each paying a commit.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.quiet) await this.quiet.catch(noop);
      const { batch, count } = this.take();
      this.queuedRows -= count;
      this.stats.pendingRows = this.queuedRows;
      this.wakeWriters();
      try {
        this.inFlight = this.store.insertBatch(batch.length === 1 ? batch[0]!.rows : batch.flatMap((p) => p.rows));
        await this.inFlight;
        this.stats.committedRows += count;
        this.stats.committedBatches++;
        for (const p of batch) p.resolve();
      } catch (error) {
        this.stats.failedBatches++;
        for (const p of batch) p.reject(error as Error);
      }
    }
    this.writing = false;
    this.inFlight = null;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Admits waiting writes, oldest first, while there is room. */
  private wakeWriters(): void {
    let n = 0;
    while (n < this.waiting.length && this.queuedRows < this.options.maxPending) this.admit(this.urgent, this.waiting[n++]!);
    // One splice, not a shift() each (see take).
    if (n > 0) this.waiting.splice(0, n);
    this.stats.waitingWrites = this.waiting.length;
  }
}

function noop(): void {}
