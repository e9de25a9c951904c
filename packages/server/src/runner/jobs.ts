/**
 * The node's periodic jobs: each runs on its own unref'd timer (it never holds the process open),
 * a failed run is logged and the next run still comes, and shutdown stops them all at once.
 */

export interface JobLog {
  error(fields: object, message: string): void;
}

export class BackgroundJobs {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly log: JobLog) {}

  /** Runs `run` every `ms` milliseconds; a rejected run is logged with `failure` as its message. */
  every(ms: number, failure: string, run: () => Promise<unknown>): void {
    const timer = setInterval(() => void run().catch((error: unknown) => this.log.error({ err: error }, failure)), ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Stops every timer (a run in flight finishes on its own). */
  stop(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }
}
