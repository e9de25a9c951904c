/**
 * Reconnect delays: exponential backoff with full jitter. Attempt n waits a uniformly random time
 * in [floor, min(cap, base · 2^n)], so a fleet that lost its broker at the same moment spreads
 * its reconnects out instead of arriving together, and one device never retries in a tight loop
 * (the floor). The attempt count starts again only after a connection has stayed up a while.
 */
export interface BackoffOptions {
  /** First ceiling, ms (default 1 s). */
  baseMs?: number;
  /** Largest ceiling, ms (default 5 min). */
  capMs?: number;
  /** Smallest delay whatever the draw, ms (default 100 ms or the base, whichever is smaller). */
  floorMs?: number;
  /** A connection up this long resets the attempt count (default 30 s). */
  stableMs?: number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly floorMs: number;
  readonly stableMs: number;
  private attempt = 0;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.baseMs = options.baseMs ?? 1000;
    this.capMs = options.capMs ?? 300_000;
    this.floorMs = Math.min(options.floorMs ?? 100, this.baseMs);
    this.stableMs = options.stableMs ?? 30_000;
    if (!(this.baseMs > 0) || !(this.capMs >= this.baseMs)) throw new RangeError('backoff needs 0 < baseMs <= capMs');
  }

  /** The ceiling of attempt `n` (0-based). */
  ceiling(n: number): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(n, 52));
  }

  /** The delay before the next attempt; each call counts one attempt. */
  next(): { attempt: number; delayMs: number; ceilingMs: number } {
    const attempt = this.attempt++;
    const ceilingMs = this.ceiling(attempt);
    const delayMs = Math.max(this.floorMs, Math.floor(this.random() * ceilingMs));
    return { attempt, delayMs, ceilingMs };
  }

  reset(): void {
    this.attempt = 0;
  }
}
