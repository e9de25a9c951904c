/**
 * SQLite: moves the telemetry log (storage/migrations/034_telemetry_log.ts) into the stored table
 * in the background. Once LOG_GENERATION_ROWS rows wait, the log's rows up to its newest `seq` (a
 * generation) move in LOG_DEVICE_RANGES.length + 1 slices, one transaction each, a range of device
 * IDs per slice, each device's rows in (device_id, ts, seq) order; rows appended meanwhile wait for
 * the next generation. A slice runs where batches are committed: the running server's writer thread
 * (telemetry/batch-worker.ts, in a turn at the write lock like a batch), or the platform's own
 * connection when there is none.
 *
 * Why so (`npm run bench:telemetry-layout`, docs/operations.md): a move writes each device's index
 * page once for all the device's rows in it, so a large generation costs less a row; slicing it by
 * device keeps that (each device's rows are in one slice) while a slice holds the write lock, and so
 * the batches behind it, only a fraction as long. Measured with 1,000 devices and a 64 MB cache, a
 * 10,000-row generation in 8 slices: 12.8 µs a row appending included, slices up to 15 ms, against
 * 26-28 µs a row inserted straight into the indexed table; in 2 slices by `seq` instead, 14.2 µs and
 * up to 58 ms. Every query by device scans the log (no index: that is the point), so the log is kept
 * to about a generation and what arrives while it moves.
 *
 * A failed slice (disk full, say) leaves its rows in the log, readable as before; it is reported and
 * tried again after LOG_RETRY_MS, at a later batch.
 */

/** Rows waiting in the log before a generation moves. */
export const LOG_GENERATION_ROWS = 10_000;
/**
 * Where the slices of a generation divide the device IDs: random UUIDs (tokens.ts `newId`), so the
 * first hex digit splits them evenly. The ranges cover every string (below the first bound, between
 * two, from the last on), whatever an ID looks like.
 */
export const LOG_DEVICE_RANGES = ['2', '4', '6', '8', 'a', 'c', 'e'] as const;
/** After a failed slice, none is tried again before this. */
export const LOG_RETRY_MS = 10_000;

/** One slice: the generation's last `seq`, and its device range [low, high) (high null: no upper bound). */
export interface LogSliceRange {
  upTo: number;
  low: string;
  high: string | null;
}

/**
 * A slice as SQL run in one write transaction (the same text on the writer thread and on the
 * platform's connection), parameters (upTo, low, high, high): the range's rows copied in device
 * order (they keep their `seq`), then deleted from the log.
 */
export const LOG_MOVE_SQL = {
  copy: `insert into telemetry (seq, organization_id, device_id, ts, received_at, data)
    select seq, organization_id, device_id, ts, received_at, data from telemetry_log
    where seq <= ? and device_id >= ? and (? is null or device_id < ?) order by device_id, ts, seq`,
  drop: 'delete from telemetry_log where seq <= ? and device_id >= ? and (? is null or device_id < ?)',
} as const;

/** The parameters of both statements of a slice. */
export function sliceParameters(range: LogSliceRange): [number, string, string | null, string | null] {
  return [range.upTo, range.low, range.high, range.high];
}

/** The slices of a generation ending at `upTo`. */
export function generationSlices(upTo: number): LogSliceRange[] {
  const bounds = ['', ...LOG_DEVICE_RANGES];
  return bounds.map((low, i) => ({ upTo, low, high: LOG_DEVICE_RANGES[i] ?? null }));
}

/** What a slice did: rows moved, and how long its transaction held the write lock (ms). */
export interface LogSlice {
  moved: number;
  ms: number;
}

export interface LogMoverLog {
  error(details: object, message: string): void;
}

export interface LogMoverStats {
  /** Rows moved into the stored table, in how many generations and slices. */
  movedRows: number;
  generations: number;
  slices: number;
  /** Slices that failed (their rows stayed in the log). */
  failures: number;
  /** The longest slice's transaction, and all of them (ms): the time batches waited behind moves. */
  longestSliceMs: number;
  sliceMs: number;
}

export interface LogMoverOptions {
  generationRows: number;
  retryMs: number;
  now: () => number;
}

export const DEFAULT_LOG_MOVES: LogMoverOptions = { generationRows: LOG_GENERATION_ROWS, retryMs: LOG_RETRY_MS, now: Date.now };

/** Where the mover reads and writes the log. */
export interface LogAccess {
  /** Moves one slice in one transaction. */
  moveSlice(range: LogSliceRange): Promise<LogSlice>;
  /** The rows in the log, and its newest `seq` (null when empty). */
  count(): Promise<number>;
  lastSeq(): Promise<number | null>;
}

export class TelemetryLogMover {
  /** Rows in the log not moved yet: as last counted, plus those appended since and less those moved. */
  private waiting = 0;
  /** Whether `waiting` can be trusted: not before the first count, nor after a failed slice (the log is counted again). */
  private counted = false;
  private running: Promise<void> | null = null;
  private stopped = false;
  private retryAt = 0;
  private log: LogMoverLog | null = null;
  readonly stats: LogMoverStats = { movedRows: 0, generations: 0, slices: 0, failures: 0, longestSliceMs: 0, sliceMs: 0 };

  constructor(
    private readonly access: LogAccess,
    private readonly options: LogMoverOptions = DEFAULT_LOG_MOVES,
  ) {}

  /** Where a failed slice is reported (the running server's log); unreported otherwise, but counted. */
  reportTo(log: LogMoverLog | null): void {
    this.log = log;
  }

  /**
   * Rows waiting in the log to be moved, as this process last knew them (0 before its first count):
   * a number that keeps rising says moves are failing, and queries by device scan all of it.
   */
  get rowsWaiting(): number {
    return this.waiting;
  }

  /** `rows` were appended to the log: moves a generation in the background once enough wait. */
  appended(rows: number): void {
    this.waiting += rows;
    if (this.running || this.stopped || this.options.now() < this.retryAt) return;
    if (this.counted && this.waiting < this.options.generationRows) return;
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
      if (!this.counted) {
        this.waiting = await this.access.count();
        this.counted = true;
      }
      while (!this.stopped && this.waiting >= this.options.generationRows) {
        const upTo = await this.access.lastSeq();
        if (upTo === null) {
          this.waiting = 0;
          break;
        }
        let moved = 0;
        for (const range of generationSlices(upTo)) {
          if (this.stopped) return;
          const slice = await this.access.moveSlice(range);
          moved += slice.moved;
          this.stats.movedRows += slice.moved;
          this.stats.slices++;
          this.stats.sliceMs += slice.ms;
          this.stats.longestSliceMs = Math.max(this.stats.longestSliceMs, slice.ms);
        }
        this.stats.generations++;
        // Fewer than a generation: the log held less than counted (readings erased meanwhile): count it again.
        this.waiting = moved < this.options.generationRows ? await this.access.count() : Math.max(0, this.waiting - moved);
      }
    } catch (error) {
      this.stats.failures++;
      this.counted = false;
      this.retryAt = this.options.now() + this.options.retryMs;
      this.log?.error(
        { err: error },
        'telemetry log not moved into the stored table: its rows stay in the log, readable; tried again at a later batch',
      );
    }
  }
}
