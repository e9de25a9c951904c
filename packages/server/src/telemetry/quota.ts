/**
 * Daily telemetry quotas (promise 9: one device cannot fill the database for the others). Each
 * device may store so many readings and so many payload bytes per UTC day: its product's
 * `telemetryDailyReadings` / `telemetryDailyBytes`, or the deployment's defaults. With the
 * product's retention this bounds what one device can ever hold: quota × retention days.
 *
 * The count lives in memory on the node that holds the device's session (the broker asks on
 * every telemetry message, so the common case answers without a query) and is written to
 * `telemetry_usage` every few seconds and on shutdown. A device's count for the day is loaded
 * from there the first time the node sees it that day, so the quota holds across restarts and
 * across nodes; what can escape it is what another node admitted in its last unflushed seconds.
 * A message that would cross the quota is refused whole (the device is told why).
 */
import type { Actor } from '../accounts/roles.js';
import type { Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import type { TelemetryStore, UsageDelta } from './store.js';

export interface QuotaDefaults {
  dailyReadings: number;
  dailyBytes: number;
}

export interface QuotaLimits {
  readings: number;
  bytes: number;
}

/** Who is asking to store telemetry: the fields of a device identity the quota needs. */
export interface QuotaSubject {
  deviceId: string;
  organizationId: string;
  productId: string;
}

export type QuotaVerdict = { admitted: true } | { admitted: false; exceeded: 'readings' | 'bytes'; used: number; limit: number };

export interface UsageView {
  /** The UTC day counted (YYYY-MM-DD); the count starts again at 00:00 UTC. */
  day: string;
  readings: number;
  bytes: number;
  limits: QuotaLimits;
  /** Where the limits come from: the product's own quota or the deployment's default, per limit. */
  source: { readings: 'product' | 'default'; bytes: 'product' | 'default' };
}

interface Usage {
  day: number;
  readings: number;
  bytes: number;
  /** Its key in the pending deltas, made once per device and day rather than once per message. */
  key: string;
}

interface ProductQuota {
  limits: QuotaLimits;
  source: UsageView['source'];
  fetchedAt: number;
}

const DAY_MS = 86_400_000;
/** A product's quota is read again after this long (an operator's change applies within it). */
const LIMITS_TTL_MS = 60_000;
/** Usage rows older than this many days are deleted (they serve reports, not enforcement). */
export const USAGE_KEPT_DAYS = 35;

const dayOf = (ms: number) => Math.floor(ms / DAY_MS);

/** The one verdict of every admitted message: nothing is allocated for it on the hot path. */
const ADMITTED: QuotaVerdict = Object.freeze({ admitted: true });

export class TelemetryQuota {
  /** Today's admitted totals per device seen on this node today. */
  private readonly usage = new Map<string, Usage>();
  private readonly loading = new Map<string, Promise<Usage>>();
  /** Admitted since the last flush, per device and day. */
  private pending = new Map<string, UsageDelta>();
  private readonly products = new Map<string, ProductQuota>();
  private flushing: Promise<void> | null = null;
  private prunedDay = -1;

  constructor(
    private readonly store: TelemetryStore,
    private readonly devices: DevicesService,
    private readonly clock: Clock,
    private readonly defaults: QuotaDefaults,
  ) {}

  /**
   * The verdict without a query, when this node already knows the device's count and its product's
   * quota today; null when it must load them first (then call `admit`).
   */
  admitKnown(subject: QuotaSubject, readings: number, bytes: number): QuotaVerdict | null {
    const now = this.clock.now();
    const usage = this.usage.get(subject.deviceId);
    const product = this.products.get(subject.productId);
    if (!usage || usage.day !== dayOf(now) || !product || now - product.fetchedAt > LIMITS_TTL_MS) return null;
    return this.charge(subject, usage, product.limits, readings, bytes);
  }

  /** Admits `readings` readings of `bytes` payload bytes for the device today, or says which allowance they would exceed. */
  async admit(subject: QuotaSubject, readings: number, bytes: number): Promise<QuotaVerdict> {
    const known = this.admitKnown(subject, readings, bytes);
    if (known) return known;
    const [usage, product] = await Promise.all([
      this.usageToday(subject.deviceId),
      this.productQuota(subject.organizationId, subject.productId),
    ]);
    return this.charge(subject, usage, product.limits, readings, bytes);
  }

  /** A device's count today and its limits, for operators (devices:read); may lag another node's last few seconds. */
  async usageOf(actor: Actor, deviceId: string): Promise<UsageView> {
    const device = await this.devices.get(actor, deviceId);
    const today = dayOf(this.clock.now());
    const known = this.usage.get(deviceId);
    const usage = known?.day === today ? known : ((await this.store.usage(deviceId, today)) ?? { day: today, readings: 0, bytes: 0 });
    const product = await this.productQuota(actor.organizationId, device.productId);
    return {
      day: new Date(today * DAY_MS).toISOString().slice(0, 10),
      readings: usage.readings,
      bytes: usage.bytes,
      limits: product.limits,
      source: product.source,
    };
  }

  /** Writes what was admitted since the last flush; forgets devices not seen today. Run every few seconds and at shutdown. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    const today = dayOf(this.clock.now());
    for (const [deviceId, usage] of this.usage) if (usage.day !== today) this.usage.delete(deviceId);
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size > 0) {
      try {
        await this.store.addUsage([...batch.values()]);
      } catch (error) {
        // Kept for the next flush, added to what came meanwhile.
        for (const [key, delta] of batch) {
          const later = this.pending.get(key);
          this.pending.set(key, later ? { ...delta, readings: delta.readings + later.readings, bytes: delta.bytes + later.bytes } : delta);
        }
        throw error;
      }
    }
    if (this.prunedDay !== today) {
      await this.store.deleteUsageBefore(today - USAGE_KEPT_DAYS);
      this.prunedDay = today;
    }
  }

  private charge(subject: QuotaSubject, usage: Usage, limits: QuotaLimits, readings: number, bytes: number): QuotaVerdict {
    if (usage.readings + readings > limits.readings)
      return { admitted: false, exceeded: 'readings', used: usage.readings, limit: limits.readings };
    if (usage.bytes + bytes > limits.bytes) return { admitted: false, exceeded: 'bytes', used: usage.bytes, limit: limits.bytes };
    usage.readings += readings;
    usage.bytes += bytes;
    const delta = this.pending.get(usage.key);
    if (delta) {
      delta.readings += readings;
      delta.bytes += bytes;
    } else {
      this.pending.set(usage.key, { deviceId: subject.deviceId, organizationId: subject.organizationId, day: usage.day, readings, bytes });
    }
    return ADMITTED;
  }

  /** The device's count today: what this node holds, else what storage holds (one load at a time per device). */
  private async usageToday(deviceId: string): Promise<Usage> {
    const today = dayOf(this.clock.now());
    const known = this.usage.get(deviceId);
    if (known?.day === today) return known;
    let load = this.loading.get(deviceId);
    if (!load) {
      load = this.store
        .usage(deviceId, today)
        .then((stored) => {
          const usage = { day: today, readings: stored?.readings ?? 0, bytes: stored?.bytes ?? 0, key: `${deviceId}:${today}` };
          this.usage.set(deviceId, usage);
          return usage;
        })
        .finally(() => this.loading.delete(deviceId));
      this.loading.set(deviceId, load);
    }
    return load;
  }

  private async productQuota(organizationId: string, productId: string): Promise<ProductQuota> {
    const now = this.clock.now();
    const cached = this.products.get(productId);
    if (cached && now - cached.fetchedAt <= LIMITS_TTL_MS) return cached;
    const product = await this.devices.productOf(organizationId, productId);
    const quota: ProductQuota = {
      limits: {
        readings: product?.telemetryDailyReadings ?? this.defaults.dailyReadings,
        bytes: product?.telemetryDailyBytes ?? this.defaults.dailyBytes,
      },
      source: {
        readings: product?.telemetryDailyReadings == null ? 'default' : 'product',
        bytes: product?.telemetryDailyBytes == null ? 'default' : 'product',
      },
      fetchedAt: now,
    };
    this.products.set(productId, quota);
    return quota;
  }
}
