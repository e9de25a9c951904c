/**
 * Group commit of devices' update progress: the status moves of the one-statement path
 * (rollout-inbox.ts) that arrive while a write is under way are written together, in one
 * transaction, once it is done. A device's promise settles only after the transaction holding its
 * move committed, and the broker acknowledges a status only after its handler settled, so an
 * acknowledged status is as durable as before. A move alone is written as it always was (one
 * statement; a success's two in a transaction of their own). If a batch's transaction fails,
 * every move in it is refused with that error (none was written) and the device sends it again.
 */
import type { Executor, ProgressMove, RolloutStore } from './rollout-store.js';

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
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          const moved = await this.write(batch);
          batch.forEach((pending, i) => pending.settle.resolve(moved[i]!));
        } catch (error) {
          for (const pending of batch) pending.settle.reject(error);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async write(batch: Pending[]): Promise<boolean[]> {
    const one = batch.length === 1 ? batch[0]! : null;
    if (one && one.move.state !== 'succeeded') return [await this.store.advance(one.move, one.error, one.now, this.db)];
    return this.db.transaction().execute(async (trx) => {
      const moved: boolean[] = [];
      for (const pending of batch) moved.push(await this.store.advance(pending.move, pending.error, pending.now, trx));
      return moved;
    });
  }
}
