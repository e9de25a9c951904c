/**
 * Telemetry retention: deletes every reading stamped (by its `ts`) longer ago than its device's
 * product keeps telemetry (`telemetryRetentionDays`, or the deployment's `telemetry.retentionDays`
 * for products that set none). Run periodically by each server and by `bulwark telemetry prune`.
 *
 * Deletion goes in bounded batches: at most `batchRows` rows of at most 500 devices per statement,
 * each statement its own short transaction, with a turn of the event loop between them, so a large
 * backlog never holds SQLite's single connection or a long PostgreSQL transaction, and ingest and
 * queries go on meanwhile. Two servers pruning at once only share the work.
 */
import type { Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import type { TelemetryStore } from './store.js';

export interface RetentionOptions {
  /** Days kept for products without their own retention. */
  defaultDays: number;
  /** Rows per delete statement. */
  batchRows: number;
}

export interface ProductPrune {
  organizationId: string;
  productId: string;
  retentionDays: number;
  /** True when the product sets no retention and the deployment default applied. */
  usesDefault: boolean;
  /** Readings stamped before this were (or, dry, would be) deleted. */
  cutoff: string;
  rows: number;
}

export interface PruneReport {
  dryRun: boolean;
  /** Rows deleted (or that would be, dry). */
  rows: number;
  /** Delete statements run. */
  batches: number;
  /** False when the pass was stopped (shutdown) before it finished. */
  complete: boolean;
  products: ProductPrune[];
}

const DAY_MS = 86_400_000;
/** Device IDs per statement: an `in (…)` list well under both engines' parameter limits. */
const DEVICES_PER_STATEMENT = 500;

const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class RetentionJob {
  private current: Promise<PruneReport> | null = null;
  private stopping = false;

  constructor(
    private readonly store: TelemetryStore,
    private readonly devices: DevicesService,
    private readonly clock: Clock,
    private readonly options: RetentionOptions,
  ) {}

  /** One pass over every product. A deleting pass already under way is joined, not doubled. */
  run(options: { dryRun?: boolean } = {}): Promise<PruneReport> {
    if (options.dryRun) return this.pass(true);
    this.current ??= this.pass(false).finally(() => {
      this.current = null;
    });
    return this.current;
  }

  /** Ends a running pass after its current statement and waits for it (shutdown). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.current?.catch(() => undefined);
  }

  private async pass(dryRun: boolean): Promise<PruneReport> {
    const now = this.clock.now();
    const report: PruneReport = { dryRun, rows: 0, batches: 0, complete: true, products: [] };
    for (const policy of await this.devices.retentionPolicies()) {
      const retentionDays = policy.retentionDays ?? this.options.defaultDays;
      const cutoff = now - retentionDays * DAY_MS;
      const product: ProductPrune = {
        organizationId: policy.organizationId,
        productId: policy.productId,
        retentionDays,
        usesDefault: policy.retentionDays === null,
        cutoff: new Date(cutoff).toISOString(),
        rows: 0,
      };
      report.products.push(product);
      for await (const deviceIds of this.devices.deviceIdsOfProduct(policy.organizationId, policy.productId, DEVICES_PER_STATEMENT)) {
        if (dryRun) {
          product.rows += await this.store.countOlderThan(deviceIds, cutoff);
          continue;
        }
        for (;;) {
          if (this.stopping) {
            report.complete = false;
            report.rows += product.rows;
            return report;
          }
          const deleted = await this.store.deleteOlderThan(deviceIds, cutoff, this.options.batchRows);
          report.batches++;
          product.rows += deleted;
          await yieldTurn();
          if (deleted < this.options.batchRows) break;
        }
      }
      report.rows += product.rows;
    }
    return report;
  }
}
