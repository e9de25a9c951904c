/**
 * Checkpoints a SQLite WAL from a worker thread, so the platform's event loop never does.
 *
 * In WAL mode every commit appends to the `-wal` file and a checkpoint copies those pages back
 * into the database and syncs it. Done by the committing connection (SQLite's autocheckpoint), it
 * stops the event loop for as long as it takes: at 10,000 telemetry messages a second a 40 MB
 * checkpoint held every PUBACK for 100 ms and more, which set the p99 publish latency. Here a
 * worker with its own connection runs a PASSIVE checkpoint every CHECKPOINT_INTERVAL_MS (it never
 * waits for or blocks the writer); the main connection keeps its autocheckpoint only as a safety
 * valve for when the worker falls behind or fails (see openDatabase).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { sql, type Kysely } from 'kysely';
import { AUTOCHECKPOINT_PAGES } from './database.js';
import type { Database } from './schema.js';

/**
 * The worker: its own connection to the file, a PASSIVE checkpoint every interval (it copies what
 * no reader still needs and never blocks the writer), a last one when told to stop; each failure
 * is reported. Plain CommonJS run with `eval`, so it loads the same way from the sources and the
 * build; better-sqlite3 is resolved by the main thread.
 *
 * A PASSIVE checkpoint alone never lets the WAL start over while commits keep coming (a commit
 * lands while it copies, so it never copies everything, and the WAL restarts only once every frame
 * is copied): the WAL would grow until the committing connection's own autocheckpoint ran, on the
 * event loop, or without it for ever. So when the WAL is past `restartFrames`, the worker asks for quiet (`quiet`): the main thread holds its
 * telemetry batches, answers `go`, and the worker copies the few frames left, then restarts the
 * WAL itself with a one-page write (the user_version it already has), which also pays the sync of
 * the new WAL header here rather than on the event loop. Then `resumed`.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.module);
const db = new SQLite(workerData.file);
db.pragma('busy_timeout = 1000');
let quiet = false;
let stopped = false;
function passive() {
  return db.pragma('wal_checkpoint(PASSIVE)')[0];
}
function checkpoint() {
  if (quiet) return;
  try {
    const result = passive();
    if (result.log >= workerData.restartFrames) {
      quiet = true;
      parentPort.postMessage({ quiet: true });
    }
  } catch (error) {
    parentPort.postMessage({ error: error.message });
  }
}
function restart() {
  try {
    const result = passive();
    if (result.log === result.checkpointed) db.pragma('user_version = ' + db.pragma('user_version', { simple: true }));
  } catch (error) {
    parentPort.postMessage({ error: error.message });
  }
  quiet = false;
  parentPort.postMessage({ resumed: true });
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  // A 'go' that crosses 'stop' (the main thread held its writes as the stop was sent) finds the connection closed: nothing to restart.
  if (stopped) return;
  if (message === 'go') return restart();
  if (message !== 'stop') return;
  stopped = true;
  clearInterval(timer);
  try {
    passive();
  } catch (error) {
    parentPort.postMessage({ error: error.message });
  }
  db.close();
  parentPort.postMessage({ stopped: true });
});
parentPort.postMessage({ ready: true });
`;

/**
 * A PASSIVE checkpoint every 250 ms, and the WAL made to start over past 3,000 frames (~12 MB).
 * Telemetry writes about a WAL frame a row (each row dirties its device's index page), some 40 MB a
 * second at 10,000 messages a second. Checkpointing every second with a restart past 10,000 frames
 * let the WAL reach 70 MB: every commit searched a longer WAL index, each checkpoint copied for
 * 15–100 ms, and the commits beside it slowed. With these, three `bench:ingest` runs gave open-loop
 * PUBACK p99 42–79 ms and event-loop delay p99 13–15 ms, against 98–137 and 19–26 before
 * (docs/operations.md, "The WAL kept short").
 */
export const CHECKPOINT_INTERVAL_MS = 250;
export const RESTART_FRAMES = 3000;

/** The longest the platform's writes are held for a WAL restart. */
const MAX_HOLD_MS = 500;

export interface CheckpointerLog {
  error(details: object, message: string): void;
}

/** Runs `work` while the platform's own writes are held (the telemetry writer's batches), and resolves when it is done. */
export type Quiesce = (work: () => Promise<void>) => Promise<void>;

export interface CheckpointerOptions {
  /** Milliseconds between PASSIVE checkpoints (default CHECKPOINT_INTERVAL_MS). */
  intervalMs?: number;
  /** WAL frames (pages) past which the WAL is made to start over (default RESTART_FRAMES). */
  restartFrames?: number;
  /**
   * The platform's connection to the same file: its autocheckpoint is turned off while the worker
   * runs (the worker restarts the WAL instead, with writes held) and back on when it stops or fails.
   */
  main?: Kysely<Database>;
  /** How the main thread holds its writes for a moment; by default it does not (the WAL restarts when commits pause by themselves). */
  quiesce?: Quiesce;
}

export class WalCheckpointer {
  private stopping: Promise<void> | null = null;
  failures = 0;
  /** Times the WAL was made to start over with the platform's writes held. */
  restarts = 0;
  /** Set by the main thread: how to hold its writes (see CheckpointerOptions.quiesce). */
  quiesce: Quiesce = (work) => work();
  private resumed: (() => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly main: Kysely<Database> | null,
  ) {}

  /** Starts the worker on `file` and resolves once its connection is open. */
  static start(file: string, log: CheckpointerLog, options: CheckpointerOptions = {}): Promise<WalCheckpointer> {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const workerData = {
      file,
      module,
      intervalMs: options.intervalMs ?? CHECKPOINT_INTERVAL_MS,
      restartFrames: options.restartFrames ?? RESTART_FRAMES,
    };
    const worker = new Worker(WORKER, { eval: true, workerData });
    const checkpointer = new WalCheckpointer(worker, options.main ?? null);
    if (options.quiesce) checkpointer.quiesce = options.quiesce;
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (message: { ready?: boolean; error?: string; quiet?: boolean; resumed?: boolean }) => {
        if (message.quiet) {
          checkpointer.holdWrites();
        } else if (message.resumed) {
          checkpointer.restarts++;
          checkpointer.resumed?.();
        } else if (message.ready) {
          worker.off('error', reject);
          worker.on('error', (error) => {
            checkpointer.resumed?.();
            log.error({ err: error }, 'WAL checkpointer stopped: the database falls back to checkpointing on commit');
            void checkpointer.autocheckpoint(AUTOCHECKPOINT_PAGES).catch(() => undefined);
          });
          worker.unref();
          checkpointer.autocheckpoint(0).then(
            () => resolve(checkpointer),
            (error: unknown) => {
              void worker.terminate();
              reject(error as Error);
            },
          );
        } else if (message.error) {
          checkpointer.failures++;
          log.error({ err: message.error }, 'WAL checkpoint failed');
        }
      });
    });
  }

  /** The worker asked for quiet: writes are held until it has restarted the WAL (or given up). */
  private holdWrites(): void {
    if (this.stopping) return; // the worker is closing its connection: there is no WAL restart to wait for
    void this.quiesce(
      () =>
        new Promise<void>((resolve) => {
          // Writes are never held for long, whatever the worker does (a stuck disk, a worker ended).
          const timeout = setTimeout(() => this.resumed?.(), MAX_HOLD_MS);
          this.resumed = () => {
            this.resumed = null;
            clearTimeout(timeout);
            resolve();
          };
          this.worker.postMessage('go');
        }),
    );
  }

  /** Sets the main connection's autocheckpoint (0: off), when there is one. */
  private async autocheckpoint(pages: number): Promise<void> {
    if (this.main) await sql`pragma wal_autocheckpoint = ${sql.raw(String(pages))}`.execute(this.main);
  }

  /** Runs a last checkpoint and ends the worker; the main connection checkpoints on commit again. */
  stop(): Promise<void> {
    this.stopping ??= this.autocheckpoint(AUTOCHECKPOINT_PAGES)
      .catch(() => undefined)
      .then(() => this.stopWorker());
    return this.stopping;
  }

  private stopWorker(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => resolve();
      this.worker.ref(); // held until it has exited
      this.worker.once('exit', () => {
        this.resumed?.();
        done();
      });
      this.worker.on('message', (message: { stopped?: boolean }) => {
        if (message.stopped) void this.worker.terminate();
      });
      this.worker.postMessage('stop');
      // A worker that does not answer within 5 s is ended anyway (shutdown must not hang).
      setTimeout(() => void this.worker.terminate(), 5000).unref();
    });
  }
}
