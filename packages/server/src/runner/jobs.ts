/**
 * The node's periodic jobs: each runs on its own unref'd timer (it never holds the process open),
 * a failed run is logged and the next run still comes, and shutdown stops them all at once.
 *
 * A job is either the node's own (it flushes what this node holds in memory, or checks this node's
 * certificate) or deployment-wide (rollouts, retention, backups, the audit checks, anomaly
 * scoring). A deployment-wide job runs on the one node holding its lease (ops/job-lease-store.ts):
 * a node takes a free or lapsed lease when the job's timer fires, and a heartbeat renews what it
 * holds. When the holder stops (it releases its leases) or dies (they lapse after `leaseMs`),
 * another node takes each job at its next turn: a daily backup runs once a day in the deployment,
 * not once per node.
 */
import type { Clock } from '../clock.js';
import type { JobLeaseStore } from '../ops/job-lease-store.js';

export interface JobLog {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface Leases {
  store: JobLeaseStore;
  /** This node, as the holder of the leases it takes. */
  holder: string;
  clock: Clock;
  /** How long a lease outlives its holder's last heartbeat (default a minute); the heartbeat comes three times as often. */
  leaseMs?: number;
}

export const DEFAULT_LEASE_MS = 60_000;

export class BackgroundJobs {
  private readonly timers: NodeJS.Timeout[] = [];
  /** The deployment-wide jobs whose lease this node took at their last turn. */
  private readonly held = new Set<string>();
  private readonly leaseMs: number;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: JobLog,
    private readonly leases: Leases,
  ) {
    this.leaseMs = leases.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Runs `run` every `ms` milliseconds on this node; a rejected run is logged with `failure` as its message. */
  every(ms: number, failure: string, run: () => Promise<unknown>): void {
    const timer = setInterval(() => void run().catch((error: unknown) => this.log.error({ err: error }, failure)), ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Runs `run` every `ms` milliseconds on whichever node holds the lease on `job`: once per deployment. */
  deploymentWide(job: string, ms: number, failure: string, run: () => Promise<unknown>): void {
    if (!this.heartbeat) {
      const { store, holder, clock } = this.leases;
      this.heartbeat = setInterval(() => {
        if (this.held.size > 0)
          void store
            .renew(holder, clock.now() + this.leaseMs)
            .catch((error: unknown) => this.log.error({ err: error }, 'job leases not renewed'));
      }, this.leaseMs / 3);
      this.heartbeat.unref();
    }
    this.every(ms, failure, () => this.ifHeld(job, run));
  }

  /** Runs `run` now if this node holds the lease on `job` or takes it (free or lapsed). */
  async ifHeld(job: string, run: () => Promise<unknown>): Promise<boolean> {
    const { store, holder, clock } = this.leases;
    const now = clock.now();
    const held = await store.acquire(job, holder, now, now + this.leaseMs);
    if (held !== this.held.has(job)) {
      if (held) this.held.add(job);
      else this.held.delete(job);
      this.log.info({ job, holder }, held ? 'background job: this node runs it' : 'background job: another node runs it');
    }
    if (held) await run();
    return held;
  }

  /** Stops every timer (a run in flight finishes on its own) and gives up this node's leases. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    this.held.clear();
    // A lease not released (the database is gone) lapses after leaseMs instead.
    await this.leases.store
      .release(this.leases.holder)
      .catch((error: unknown) => this.log.error({ err: error }, 'job leases not released'));
  }
}
