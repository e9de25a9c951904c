/**
 * Checkpoints a SQLite WAL from a worker thread, so the platform's event loop never does.
 *
 * In WAL mode every commit appends to the `-wal` file and a checkpoint copies those pages back
 * into the database and syncs it. Done by the committing connection (SQLite's autocheckpoint), it
 * stops the event loop for as long as it takes: at 10,000 telemetry messages a second a 40 MB
 * checkpoint held every PUBACK for 100 ms and more, which set the p99 publish latency. Here a
 * worker with its own connection runs a PASSIVE checkpoint every second (it never waits for or
 * blocks the writer); the main connection keeps its autocheckpoint only as a safety valve for
 * when the worker falls behind or fails (see openDatabase).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The worker: its own connection to the file, a PASSIVE checkpoint every interval (it copies what
 * no reader still needs and never blocks the writer), a last one when told to stop; each failure
 * is reported. Plain CommonJS run with `eval`, so it loads the same way from the sources and the
 * build; better-sqlite3 is resolved by the main thread.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.module);
const db = new SQLite(workerData.file);
db.pragma('busy_timeout = 1000');
function checkpoint() {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ error: error.message });
  }
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.postMessage({ stopped: true });
});
parentPort.postMessage({ ready: true });
`;

export interface CheckpointerLog {
  error(details: object, message: string): void;
}

export class WalCheckpointer {
  private stopping: Promise<void> | null = null;
  failures = 0;

  private constructor(private readonly worker: Worker) {}

  /** Starts the worker on `file` and resolves once its connection is open. */
  static start(file: string, log: CheckpointerLog, intervalMs = 1000): Promise<WalCheckpointer> {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER, { eval: true, workerData: { file, intervalMs, module } });
    const checkpointer = new WalCheckpointer(worker);
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (message: { ready?: boolean; error?: string }) => {
        if (message.ready) {
          worker.off('error', reject);
          worker.on('error', (error) =>
            log.error({ err: error }, 'WAL checkpointer stopped: the database falls back to checkpointing on commit'),
          );
          worker.unref();
          resolve(checkpointer);
        } else if (message.error) {
          checkpointer.failures++;
          log.error({ err: message.error }, 'WAL checkpoint failed');
        }
      });
    });
  }

  /** Runs a last checkpoint and ends the worker. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const done = () => resolve();
      this.worker.ref(); // held until it has exited
      this.worker.once('exit', done);
      this.worker.on('message', (message: { stopped?: boolean }) => {
        if (message.stopped) void this.worker.terminate();
      });
      this.worker.postMessage('stop');
      // A worker that does not answer within 5 s is ended anyway (shutdown must not hang).
      setTimeout(() => void this.worker.terminate(), 5000).unref();
    });
    return this.stopping;
  }
}
