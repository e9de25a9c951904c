/**
 * Group commit of devices' update successes: the status moves of the one-statement path
 * (rollout-inbox.ts) that arrive while a write is under way are written once it is done, the
 * successes among them (two statements each) in one transaction, the other moves one statement
 * each as before. A device's promise settles only after the statement or transaction holding its
 * move committed, and the broker acknowledges a status only after its handler settled, so an
 * acknowledged status is as durable as before. A move whose write fails is refused with the error
 * (its statement or transaction was not committed) and the device sends it again.
 */
import type { Executor } from '../storage/executor.js';
import type { ProgressMove, RolloutStore } from './rollout-store.js';

interface Pending {
  move: ProgressMove;
  error: { code: string; message: string } | null;
  now: number;
  settle: { resolve: (moved: boolean) => void; reject: (error: unknown) => void };
}

/** Moves written in one transaction at most: a batch stays short, so the connection it holds is soon free. */
const MAX_BATCH = 256;

export class ProgressWriter {
  private queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly db: Executor,
    private readonly store: RolloutStore,
  ) {}

  /** Moves the device's row if the move is allowed (see RolloutStore.advance); whether it moved, once committed. */
  advance(move: ProgressMove, error: Pending['error'], now: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ move, error, now, settle: { resolve, reject } });
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      // One turn of the event loop: the statuses that arrived with this one share its batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.queue.length > 0) await this.write(this.queue.splice(0, MAX_BATCH));
    } finally {
      this.draining = false;
    }
  }

  /**
   * A progress move is one statement, committed on its own (a transaction around several would only
   * add BEGIN and COMMIT); a success is two, so the successes of the batch share one transaction.
   * One device's messages are handled one after the other by the broker: a batch never holds two of them.
   */
  private async write(batch: Pending[]): Promise<void> {
    const successes: Pending[] = [];
    for (const pending of batch) {
      if (pending.move.state === 'succeeded') successes.push(pending);
      else await settle([pending], async () => [await this.store.advance(pending.move, pending.error, pending.now, this.db)]);
    }
    if (successes.length > 0)
      await settle(successes, () =>
        this.db.transaction().execute(async (trx) => {
          const moved: boolean[] = [];
          for (const { move, error, now } of successes) moved.push(await this.store.advance(move, error, now, trx));
          return moved;
        }),
      );
  }
}

/** Settles each pending move with what the write says of it, or all of them with its error (nothing of it was committed). */
async function settle(pending: Pending[], write: () => Promise<boolean[]>): Promise<void> {
  try {
    const moved = await write();
    pending.forEach((p, i) => p.settle.resolve(moved[i]!));
  } catch (error) {
    for (const p of pending) p.settle.reject(error);
  }
}
