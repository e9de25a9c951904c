/**
 * SQLite: moves the telemetry log (storage/migrations/034_telemetry_log.ts) into the stored table,
 * oldest rows first, a slice of LOG_SLICE_ROWS rows per transaction, in the background once a whole
 * slice waits. The slice runs where batches are committed: the running server's writer thread
 * (telemetry/batch-worker.ts, in a turn at the write lock like a batch), or the platform's own
 * connection when there is none.
 *
 * Why slices of this size (`npm run bench:telemetry-layout`, docs/operations.md): a move writes each
 * device's index page once for all the device's rows in the slice, so larger slices cost less a row
 * (1,000 devices: about 18, 16 and 11 µs a row, appending included, for slices of 2,500, 5,000 and
 * 10,000 rows, against 27-30 inserted straight into the indexed table), but a slice holds the write
 * lock while it runs (about 40-60 ms for 5,000 rows: the batches behind it wait that long), and
 * every query by device scans the log (no index: that is the point), so the log is kept to about
 * two slices.
 *
 * A failed slice (disk full, say) leaves its rows in the log, readable as before; it is reported
 * once and tried again after LOG_RETRY_MS, at the next batch.
 */

/** Rows moved per transaction. */
export const LOG_SLICE_ROWS = 5000;
/** After a failed slice, none is tried again before this. */
export const LOG_RETRY_MS = 10_000;

/**
 * One slice, as SQL run in one write transaction (the same text on the writer thread and on the
 * platform's connection): the last `seq` of the oldest N rows (or of the whole log when it holds
 * fewer), then the rows up to it copied in `seq` order (they keep it) and deleted from the log.
 */
export const LOG_MOVE_SQL = {
  bound: 'select seq from telemetry_log order by seq limit 1 offset ?',
  last: 'select max(seq) as seq from telemetry_log',
  copy: `insert into telemetry (seq, organization_id, device_id, ts, received_at, data)
    select seq, organization_id, device_id, ts, received_at, data from telemetry_log where seq <= ? order by seq`,
  drop: 'delete from telemetry_log where seq <= ?',
} as const;

export interface LogMoverLog {
  error(details: object, message: string): void;
}

export interface LogMoverStats {
  /** Rows moved into the stored table, and in how many slices. */
  movedRows: number;
  slices: number;
  /** Slices that failed (their rows stayed in the log). */
  failures: number;
}

export interface LogMoverOptions {
  sliceRows: number;
  retryMs: number;
  now: () => number;
}

export const DEFAULT_LOG_MOVES: LogMoverOptions = { sliceRows: LOG_SLICE_ROWS, retryMs: LOG_RETRY_MS, now: Date.now };

export class TelemetryLogMover {
  /** Rows in the log not moved yet, as far as this process knows (null: to be counted). */
  private waiting: number | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private retryAt = 0;
  private log: LogMoverLog | null = null;
  readonly stats: LogMoverStats = { movedRows: 0, slices: 0, failures: 0 };

  constructor(
    /** Moves at most `rows` of the oldest rows in one transaction; resolves with how many moved. */
    private readonly moveSlice: (rows: number) => Promise<number>,
    /** Counts the rows in the log. */
    private readonly countLog: () => Promise<number>,
    private readonly options: LogMoverOptions = DEFAULT_LOG_MOVES,
  ) {}

  /** Where a failed slice is reported (the running server's log); unreported otherwise, but counted. */
  reportTo(log: LogMoverLog | null): void {
    this.log = log;
  }

  /** `rows` were appended to the log: moves the oldest slices in the background once a whole slice waits. */
  appended(rows: number): void {
    if (this.waiting !== null) this.waiting += rows;
    if (this.running || this.stopped || this.options.now() < this.retryAt) return;
    if (this.waiting !== null && this.waiting < this.options.sliceRows) return;
    this.running = this.run().finally(() => {
      this.running = null;
    });
  }

  /** Moves no more slices; resolves once the one under way (if any) has committed or failed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Resolves once no slice is under way (tests). */
  async settled(): Promise<void> {
    await this.running;
  }

  private async run(): Promise<void> {
    try {
      this.waiting ??= await this.countLog();
      while (!this.stopped && this.waiting !== null && this.waiting >= this.options.sliceRows) {
        const moved = await this.moveSlice(this.options.sliceRows);
        this.stats.movedRows += moved;
        this.stats.slices++;
        // Fewer than a slice: the log held less than counted (readings erased meanwhile): count it again next time.
        this.waiting = moved < this.options.sliceRows ? null : this.waiting - moved;
        if (this.waiting === null) break;
      }
    } catch (error) {
      this.stats.failures++;
      this.waiting = null;
      this.retryAt = this.options.now() + this.options.retryMs;
      this.log?.error(
        { err: error },
        'telemetry log not moved into the stored table: its rows stay in the log, readable; tried again at a later batch',
      );
    }
  }
}
