/**
 * Turns at SQLite's write lock among this process's own connections: the platform's, on the event
 * loop, and the telemetry batch worker's, on a thread (telemetry/batch-worker.ts). SQLite has one
 * writer at a time, and a connection that finds the lock taken waits in SQLite's busy handler,
 * which sleeps the calling thread: on the event loop, every connection's packets, timers and
 * PUBACKs with it, for as long as a batch takes to commit (and the handler's sleeps grow in steps
 * to 100 ms). Taking turns here first, the waiting is a promise instead: the event loop runs on.
 *
 * A turn covers a platform transaction (BEGIN IMMEDIATE to COMMIT or ROLLBACK, storage/database.ts)
 * or one telemetry batch on the worker; turns are granted in the order asked. Statements outside a
 * transaction and other processes (CLI commands beside a node) still meet the busy timeout.
 */
export class WriteTurns {
  private held = false;
  private readonly queue: (() => void)[] = [];

  /** Resolves when the caller holds the turn; the caller must `release()` it exactly once. */
  acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.queue.push(resolve));
  }

  /** Passes the turn to the next in line, if any. */
  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.held = false;
  }

  /** Runs `work` in a turn of its own. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /** Callers waiting for a turn (tests, diagnostics). */
  get waiting(): number {
    return this.queue.length;
  }
}
