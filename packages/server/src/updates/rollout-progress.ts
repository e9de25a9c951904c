/**
 * Group commit of devices' update progress: the status moves of the one-statement path
 * (rollout-inbox.ts) and the signed version reports that arrive while a write is under way are
 * written once it is done, in one transaction (a lone move is one statement committed on its own).
 * A device's promise settles only after the statement or transaction holding its write committed,
 * and the broker acknowledges a message only after its handler settled, so an acknowledged status
 * or report is as durable as before. A write that fails is refused with the error (its statement
 * or transaction was not committed) and the device sends it again.
 */
import type { DeviceVersionReportsTable } from '../storage/rollout-tables.js';
import type { Executor } from '../storage/executor.js';
import type { DeviceReportStore } from './device-report-store.js';
import type { ProgressMove, RolloutStore } from './rollout-store.js';

/** One device's write: a progress move, or a version report with the version it makes the device's (null: none). */
type Write =
  | { kind: 'move'; move: ProgressMove; error: { code: string; message: string } | null; now: number }
  | { kind: 'report'; row: DeviceVersionReportsTable; version: string | null };

interface Pending {
  write: Write;
  settle: { resolve: (done: boolean) => void; reject: (error: unknown) => void };
}

/** Writes in one transaction at most: a batch stays short, so the connection it holds is soon free. */
const MAX_BATCH = 256;

export class ProgressWriter {
  private queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly db: Executor,
    private readonly store: RolloutStore,
    private readonly reports: DeviceReportStore,
  ) {}

  /** Moves the device's row if the move is allowed (see RolloutStore.advance); whether it moved, once committed. */
  advance(move: ProgressMove, error: { code: string; message: string } | null, now: number): Promise<boolean> {
    return this.enqueue({ kind: 'move', move, error, now });
  }

  /**
   * Stores a checked version report if its counter is above the stored one's, and with it the
   * device's firmware version (`version`, unless null); whether it was stored, once committed.
   */
  storeReport(row: DeviceVersionReportsTable, version: string | null): Promise<boolean> {
    return this.enqueue({ kind: 'report', row, version });
  }

  private enqueue(write: Write): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, settle: { resolve, reject } });
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      // One turn of the event loop: the messages that arrived with this one share its batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.queue.length > 0) await this.write(this.queue.splice(0, MAX_BATCH));
    } finally {
      this.draining = false;
    }
  }

  /**
   * The writes of a batch share one transaction: on SQLite each commit writes every page it dirtied
   * to the WAL again (the rollout's rows and their indexes), and on PostgreSQL each is a WAL flush,
   * so N moves cost one commit instead of N. A lone progress move (one statement) is committed on
   * its own: a transaction around it would only add BEGIN and COMMIT. One device's messages are
   * handled one after the other by the broker: a batch never holds two of them.
   */
  private async write(batch: Pending[]): Promise<void> {
    const only = batch.length === 1 ? batch[0]!.write : null;
    if (only?.kind === 'move' && only.move.state !== 'succeeded') {
      await settle(batch, async () => [await this.apply(only, this.db)]);
      return;
    }
    await settle(batch, () =>
      this.db.transaction().execute(async (trx) => {
        const done: boolean[] = [];
        for (const { write } of batch) done.push(await this.apply(write, trx));
        return done;
      }),
    );
  }

  private async apply(write: Write, trx: Executor): Promise<boolean> {
    if (write.kind === 'move') return this.store.advance(write.move, write.error, write.now, trx);
    const { row, version } = write;
    const stored = await this.reports.storeReport(row, trx);
    if (stored && version !== null)
      await this.reports.setFirmwareVersion(row.organization_id, row.device_id, version, row.received_at, trx);
    return stored;
  }
}

/** Settles each pending write with what the write says of it, or all of them with its error (nothing of it was committed). */
async function settle(pending: Pending[], write: () => Promise<boolean[]>): Promise<void> {
  try {
    const done = await write();
    pending.forEach((p, i) => p.settle.resolve(done[i]!));
  } catch (error) {
    for (const p of pending) p.settle.reject(error);
  }
}
