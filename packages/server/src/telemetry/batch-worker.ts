/**
 * Commits SQLite telemetry batches from a worker thread with its own better-sqlite3 connection to
 * the same file, so the event loop never runs them. better-sqlite3 is synchronous: a batch of a
 * few hundred rows written on the event loop held every other connection's packets, timers and
 * PUBACKs for as long as SQLite took (about 20–30 µs a row, half of it the kernel writing WAL
 * frames). A running server attaches one to the telemetry store (runner/server.ts, the one place
 * that decides); CLI commands and anything else opening the database write on their own connection.
 *
 * A write resolves once the worker's COMMIT has returned (a PUBACK still means committed), and
 * rejects with the error of its own batch only, its SQLite code kept (SQLITE_FULL and I/O errors
 * answer storage.unavailable as before). A worker that ends unexpectedly fails the writes it held
 * with StorageUnavailableError (the devices send them again) and is started anew by the next write.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StorageUnavailableError } from '../errors.js';
import { AUTOCHECKPOINT_PAGES } from '../storage/database.js';
import type { WriteTurns } from '../storage/write-turns.js';
import { LOG_MOVE_SQL, sliceParameters, type LogSlice, type LogSliceRange } from './log-mover.js';
import { sqliteInsertStatements, type BatchWriter, type TelemetryRow } from './store.js';

/**
 * The worker: one connection, one transaction per message (BEGIN IMMEDIATE, the fixed-size
 * inserts into the log, COMMIT; or one slice of the log moved, log-mover.ts), answered with the
 * message's id (and the rows moved, and how long the slice held the write lock), or its error's
 * message and code. Rows arrive
 * as one flat array of 5 values a row (cheaper to clone than an object a row). Plain CommonJS run
 * with `eval`, so it loads the same way from the sources, the build and the bundles; better-sqlite3
 * is resolved by the main thread.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
function failure(error) {
  return { message: String(error && error.message || error), code: error && typeof error.code === 'string' ? error.code : undefined };
}
function run() {
  const SQLite = require(workerData.module);
  const db = new SQLite(workerData.file);
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
  db.pragma('wal_autocheckpoint = ' + workerData.autocheckpointPages);
  db.pragma('journal_size_limit = 67108864');
  db.pragma('foreign_keys = ON');
  // The moves read and write the stored table's index pages of every device: kept in memory, not read again each slice.
  db.pragma('cache_size = ' + workerData.cacheSize);
  const begin = db.prepare('begin immediate');
  const commit = db.prepare('commit');
  const rollback = db.prepare('rollback');
  const inserts = workerData.inserts.map(([size, text]) => [size, db.prepare(text)]);
  const move = { copy: db.prepare(workerData.move.copy), drop: db.prepare(workerData.move.drop) };
  function transaction(work) {
    begin.run();
    try {
      const result = work();
      commit.run();
      return result;
    } catch (error) {
      // SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): the error stays the one reported.
      if (db.inTransaction) rollback.run();
      throw error;
    }
  }
  function write(values) {
    let left = values.length / 5;
    let at = 0;
    for (const [size, statement] of inserts) {
      for (; left >= size; left -= size, at += size * 5) statement.run(values.slice(at, at + size * 5));
    }
  }
  function moveSlice(parameters) {
    const moved = move.copy.run(parameters).changes;
    move.drop.run(parameters);
    return moved;
  }
  parentPort.on('message', (message) => {
    if (message === 'stop') {
      db.close();
      parentPort.postMessage({ stopped: true });
      parentPort.close();
      return;
    }
    try {
      if (message.move !== undefined) {
        const started = performance.now();
        const moved = transaction(() => moveSlice(message.move));
        parentPort.postMessage({ id: message.id, moved, ms: performance.now() - started });
      } else {
        transaction(() => write(message.values));
        parentPort.postMessage({ id: message.id });
      }
    } catch (error) {
      parentPort.postMessage({ id: message.id, error: failure(error) });
    }
  });
  parentPort.postMessage({ ready: true, osThreadId: osThreadId() });
}
// This thread's ID in the kernel's tables (Linux: /proc/thread-self), for top -H and per-thread CPU; null elsewhere.
function osThreadId() {
  try {
    return Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()) || null;
  } catch {
    return null;
  }
}
try {
  run();
} catch (error) {
  parentPort.postMessage({ failed: failure(error) });
}
`;

/** The worker connection's busy timeout: the main connection may hold the write lock (30 s, as the main connection's own). */
const BUSY_TIMEOUT_MS = 30_000;

/**
 * The worker connection's page cache (KiB; SQLite's default is 2 MB): a move of the log touches an
 * index page of each device in it, and with the default cache each slice read them again from the
 * file (`bench:telemetry-layout`, 5,000-row slices: about 26 against 18 µs a row with 64 MB).
 */
const CACHE_KIB = 65_536;

/** How long a stopping worker may take to finish its batches and close before it is ended. */
const STOP_TIMEOUT_MS = 10_000;

export interface BatchWorkerLog {
  error(details: object, message: string): void;
}

/** What a worker reported about a failed batch, as an Error that keeps SQLite's code (isStorageUnavailable reads it). */
export class SqliteBatchError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'SqliteBatchError';
  }
}

interface Reply {
  id?: number;
  /** A move's answer: the rows it moved, and its transaction's time (ms). */
  moved?: number;
  ms?: number;
  error?: { message: string; code?: string };
  ready?: boolean;
  osThreadId?: number | null;
  failed?: { message: string; code?: string };
  stopped?: boolean;
}

interface Waiting {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

export class SqliteBatchWorker implements BatchWriter {
  /** The running worker, or the one starting; null before the first start and after one ended. */
  private worker: Promise<Worker> | null = null;
  /** The worker that answers, once ready and until it exits. */
  private live: Worker | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private stopping: Promise<void> | null = null;
  /** Workers that ended unexpectedly (each was reported and replaced on the next write). */
  crashes = 0;
  /** The running worker's thread ID in the kernel's tables (Linux; `top -H`, /proc/PID/task/ID), once ready; null elsewhere. */
  osThreadId: number | null = null;

  private constructor(
    private readonly file: string,
    private readonly log: BatchWorkerLog,
    private readonly turns: WriteTurns | null,
  ) {}

  /**
   * Starts the worker on `file` and resolves once its connection is open (rejects when it cannot be).
   * `turns`: the platform connection's turns at the write lock (DatabaseHandle.writeTurns), taken for
   * each batch, so neither side waits for the other in SQLite's busy handler.
   */
  static async start(file: string, log: BatchWorkerLog, turns: WriteTurns | null = null): Promise<SqliteBatchWorker> {
    const writer = new SqliteBatchWorker(file, log, turns);
    await writer.running();
    return writer;
  }

  /** Commits the rows in one transaction of the worker's: resolves after its COMMIT returned. */
  insert(rows: TelemetryRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (this.stopping) return Promise.reject(new StorageUnavailableError('The telemetry writer is stopping: nothing was written'));
    const values: unknown[] = new Array(rows.length * 5);
    for (let i = 0, k = 0; i < rows.length; i++, k += 5) {
      const r = rows[i]!;
      values[k] = r.organization_id;
      values[k + 1] = r.device_id;
      values[k + 2] = r.ts;
      values[k + 3] = r.received_at;
      values[k + 4] = r.data;
    }
    return this.send({ values }, 'batch').then(() => undefined);
  }

  /** Moves one slice of the log into the stored table in one transaction of the worker's. */
  moveLog(range: LogSliceRange): Promise<LogSlice> {
    if (this.stopping) return Promise.reject(new StorageUnavailableError('The telemetry writer is stopping: the log was not moved'));
    return this.send({ move: sliceParameters(range) }, 'move of the log').then((reply) => ({ moved: reply.moved ?? 0, ms: reply.ms ?? 0 }));
  }

  /** Sends one transaction's work to the worker in a turn at the write lock; resolves with its answer. */
  private send(work: { values: unknown[] } | { move: unknown[] }, what: string): Promise<Reply> {
    const send = () =>
      this.running().then(
        (worker) =>
          new Promise<Reply>((resolve, reject) => {
            if (worker !== this.live)
              return reject(new StorageUnavailableError(`The telemetry writer thread ended before this ${what} was sent`));
            const id = this.nextId++;
            this.waiting.set(id, { resolve, reject });
            if (this.waiting.size === 1) worker.ref();
            worker.postMessage({ id, ...work });
          }),
      );
    return this.turns ? this.turns.run(send) : send();
  }

  /** Lets the batches already sent commit, then closes the worker's connection and ends it; later writes are refused. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const worker = await this.worker?.catch(() => null);
      if (!worker) return;
      worker.ref(); // held until it has exited
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('stop');
      const timeout = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timeout);
    })();
    return this.stopping;
  }

  private running(): Promise<Worker> {
    this.worker ??= this.spawn();
    return this.worker;
  }

  private spawn(): Promise<Worker> {
    const workerData = {
      file: this.file,
      module: createRequire(import.meta.url).resolve('better-sqlite3'),
      busyTimeoutMs: BUSY_TIMEOUT_MS,
      // A safety valve only: the WalCheckpointer restarts the WAL first (at its RESTART_FRAMES), and when it
      // is not running this connection checkpoints on commit, off the event loop.
      autocheckpointPages: AUTOCHECKPOINT_PAGES * 2,
      inserts: sqliteInsertStatements(),
      move: LOG_MOVE_SQL,
      cacheSize: -CACHE_KIB,
    };
    // Held (ref) while it starts and while it has batches to answer, so nothing is left pending; idle, it keeps no process alive.
    const worker = new Worker(WORKER, { eval: true, workerData });
    const started = new Promise<Worker>((resolve, reject) => {
      let ready = false;
      let failure: Error | null = null;
      worker.on('message', (message: Reply) => {
        if (message.id !== undefined) {
          const waiting = this.waiting.get(message.id);
          this.waiting.delete(message.id);
          if (message.error) waiting?.reject(new SqliteBatchError(message.error.message, message.error.code));
          else waiting?.resolve(message);
          if (this.waiting.size === 0 && !this.stopping) worker.unref();
        } else if (message.ready) {
          ready = true;
          this.live = worker;
          this.osThreadId = message.osThreadId ?? null;
          if (this.waiting.size === 0) worker.unref();
          resolve(worker);
        } else if (message.failed) {
          failure = new SqliteBatchError(
            `The telemetry writer thread could not open the database: ${message.failed.message}`,
            message.failed.code,
          );
        }
      });
      // Always listened to: an error event nobody hears would end the process.
      worker.on('error', (error) => {
        failure ??= error;
      });
      worker.once('exit', (code) => {
        if (this.worker === started) this.worker = null;
        if (this.live === worker) this.live = null;
        if (!ready) return reject(failure ?? new Error(`The telemetry writer thread exited (${code}) before its connection opened`));
        const unexpected = !this.stopping;
        if (unexpected) {
          this.crashes++;
          this.log.error(
            { err: failure, exitCode: code },
            'telemetry writer thread ended: the batches it held failed; the next batch starts a new one',
          );
        }
        // Its batches were sent to it alone: every one still unanswered failed (the devices send them again).
        const cause = failure ?? new Error(`the telemetry writer thread exited (${code})`);
        for (const [id, waiting] of this.waiting) {
          this.waiting.delete(id);
          waiting.reject(
            Object.assign(new StorageUnavailableError('The telemetry writer thread ended before this batch was committed'), { cause }),
          );
        }
      });
    });
    // A start that failed is not kept: the next write tries again (and fails with the reason when it still cannot).
    started.catch(() => {
      if (this.worker === started) this.worker = null;
    });
    return started;
  }
}
