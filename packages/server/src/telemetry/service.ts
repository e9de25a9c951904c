/**
 * What operators ask of a device's telemetry: its readings over a time range (keyset pages in
 * (ts, seq) order), the same range downsampled into buckets (count, avg, min, max of numbers;
 * the latest of other values), the latest value of each name, and whether it is connected.
 *
 * Every query goes through the device registry's own check (permission devices:read, device of
 * the caller's organization), so another organization's device is "not found" exactly like an
 * unknown one. Every query is bounded: a page holds at most 10,000 readings, an aggregate at most
 * 10,000 buckets, and "latest" looks at the device's last 10,000 readings.
 */
import type {
  BucketValueView,
  FleetSummaryView,
  IngestRateView,
  LatestView,
  PresenceView,
  ReadingView,
  TelemetryAggregateView,
  TelemetryValue,
} from '@bulwark/protocol';
import { requirePermission, type Actor } from '../accounts/roles.js';
import { iso, type Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import { ValidationError } from '../errors.js';
import { InvalidRangeError, TooManyBucketsError } from './errors.js';
import { MAX_FUTURE_MS, MAX_VALUES } from './payloads.js';
import { unpackLast, type TelemetryPosition, type TelemetryStore } from './store.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';

export const MAX_LIMIT = 10_000;
/** Minutes of the fleet's ingest rate (GET /fleet/telemetry/rate). */
export const INGEST_WINDOW_MINUTES = 60;

export const DEFAULT_LIMIT = 1000;
export const MAX_BUCKETS = 10_000;
/** "Latest" is the newest value of each name among the device's last this-many readings. */
export const LATEST_LOOKBACK = 10_000;
/** Without `from`, a query starts a day before `to` (or before now, when `to` is not given either). */
export const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const INTERVAL = /^([1-9][0-9]{0,4})([smhd])$/;
const MAX_INTERVAL_MS = 366 * UNIT_MS.d;
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const MILLIS = /^[0-9]{1,15}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

export interface RangeQuery {
  /** ISO 8601 date-time or milliseconds since the epoch; inclusive. */
  from?: string;
  /** Exclusive; by default the furthest ahead a reading may be stamped (now + 24 h), so "everything from `from` on". */
  to?: string;
}

export interface ReadingsQuery extends RangeQuery {
  limit?: number;
  cursor?: string;
}

export interface AggregateQuery extends RangeQuery {
  interval: string;
  /** Comma-separated value names; all names when absent. */
  values?: string;
}

/**
 * A reading, a value, the latest of each name, an aggregate, a device's presence, the fleet's
 * summary and ingest rate: wire shapes the console and the apps read too (@bulwark/protocol).
 */
export type { FleetSummaryView, IngestRateView, LatestView, PresenceView, ReadingView, TelemetryAggregateView, TelemetryValue };

export interface ReadingsPage {
  readings: ReadingView[];
  nextCursor: string | null;
}

function instant(value: string, field: string): number {
  const ms = MILLIS.test(value) ? Number(value) : ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms) || ms > 8.64e15)
    throw new ValidationError(`${field} must be an ISO 8601 date-time (2025-11-25T10:00:00Z) or milliseconds since the epoch`, { field });
  return ms;
}

/** The cursor's position: the time and sequence of the last reading of the page. */
function isReadingPosition(v: unknown): v is { t: number; s: number } {
  const position = v as { t?: unknown; s?: unknown } | null;
  return Number.isSafeInteger(position?.t) && Number.isSafeInteger(position?.s);
}

/** Milliseconds of an interval such as 30s, 5m, 1h or 1d. */
export function intervalMs(interval: string): number {
  const match = INTERVAL.exec(interval);
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : 0;
  if (!match || ms > MAX_INTERVAL_MS)
    throw new ValidationError('interval must be a number and a unit (s, m, h or d), from 1s to 366d, such as 1m, 5m, 1h or 1d', {
      field: 'interval',
    });
  return ms;
}

/** An interval, in whole units of the largest unit that fits, that divides the range into at most `MAX_BUCKETS` (one spare for alignment). */
function smallestInterval(spanMs: number): string {
  const needed = Math.ceil(spanMs / (MAX_BUCKETS - 1));
  const [unit, ms] = (Object.entries(UNIT_MS) as [string, number][]).reverse().find(([, ms]) => needed >= ms) ?? ['s', 1000];
  return `${Math.ceil(needed / ms)}${unit}`;
}

function valueNames(values: string | undefined): string[] | null {
  if (values === undefined) return null;
  const names = [...new Set(values.split(',').map((v) => v.trim()))];
  if (names.length > MAX_VALUES || !names.every((n) => NAME.test(n))) {
    throw new ValidationError(
      `values must be a comma-separated list of at most ${MAX_VALUES} value names, each 1-64 of A-Z a-z 0-9 _ . : -`,
      { field: 'values' },
    );
  }
  return names;
}

export class TelemetryService {
  constructor(
    private readonly store: TelemetryStore,
    private readonly devices: DevicesService,
    private readonly clock: Clock,
  ) {}

  async readings(actor: Actor, deviceId: string, query: ReadingsQuery): Promise<ReadingsPage> {
    await this.devices.get(actor, deviceId);
    const { from, to } = this.range(query);
    const limit = query.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw new ValidationError(`limit must be 1 to ${MAX_LIMIT}`, { field: 'limit' });
    const position = query.cursor === undefined ? null : decodeCursor(query.cursor, isReadingPosition);
    const after: TelemetryPosition | null = position && { ts: position.t, seq: position.s };
    const rows = await this.store.page(deviceId, from, to, after, limit + 1);
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor({ t: last.ts, s: last.seq }));
    return {
      readings: page.map((r) => ({
        ts: iso(r.ts),
        receivedAt: iso(r.received_at),
        values: JSON.parse(r.data) as Record<string, TelemetryValue>,
      })),
      nextCursor,
    };
  }

  /**
   * A device's readings from `from` on, oldest first, at most `limit`, for a consumer's data
   * export (the binding domain checked the consumer owns the device since `from`). No permission
   * check here, so never expose it to a caller as is.
   */
  async exportSince(deviceId: string, from: number, limit: number): Promise<{ readings: ReadingsPage['readings']; more: boolean }> {
    const rows = await this.store.page(deviceId, from, Number.MAX_SAFE_INTEGER, null, limit + 1);
    return {
      readings: rows
        .slice(0, limit)
        .map((r) => ({ ts: iso(r.ts), receivedAt: iso(r.received_at), values: JSON.parse(r.data) as Record<string, TelemetryValue> })),
      more: rows.length > limit,
    };
  }

  /** Erases a device's readings from `from` on (an owner's account deleted); no permission check (the caller's hook decided). */
  eraseSince(deviceId: string, from: number): Promise<number> {
    return this.store.deleteSince(deviceId, from);
  }

  async aggregate(actor: Actor, deviceId: string, query: AggregateQuery): Promise<TelemetryAggregateView> {
    await this.devices.get(actor, deviceId);
    const { from, to } = this.range(query);
    const step = intervalMs(query.interval);
    const names = valueNames(query.values);
    const buckets = Math.floor((to - 1) / step) - Math.floor(from / step) + 1;
    if (buckets > MAX_BUCKETS) throw new TooManyBucketsError(buckets, MAX_BUCKETS, smallestInterval(to - from));
    const out: TelemetryAggregateView['buckets'] = [];
    for (const row of await this.store.buckets(deviceId, from, to, step, names)) {
      let bucket = out[out.length - 1];
      if (!bucket || bucket.start !== iso(row.bucket)) out.push((bucket = { start: iso(row.bucket), values: {} }));
      const view: BucketValueView = { count: row.count };
      if (row.numeric > 0) Object.assign(view, { avg: Number(row.avg), min: Number(row.min), max: Number(row.max) });
      if (row.last !== null) {
        const last = unpackLast(row.last);
        Object.assign(view, { last: last.value as TelemetryValue, lastAt: iso(last.ts) });
      }
      bucket.values[row.name] = view;
    }
    return { from: iso(from), to: iso(to), interval: query.interval, intervalMs: step, buckets: out };
  }

  async latest(actor: Actor, deviceId: string): Promise<LatestView> {
    await this.devices.get(actor, deviceId);
    const values: LatestView['values'] = {};
    for (const row of await this.store.latest(deviceId, LATEST_LOOKBACK)) {
      const last = unpackLast(row.last);
      values[row.name] = { value: last.value as TelemetryValue, ts: iso(last.ts) };
    }
    return { lookback: LATEST_LOOKBACK, values };
  }

  /** The fleet overview: devices by status, product and firmware version, and how many are online now. */
  async fleetSummary(actor: Actor): Promise<FleetSummaryView> {
    const counts = await this.devices.fleetCounts(actor);
    const online = await this.store.onlineCount(actor.organizationId);
    return { total: counts.byStatus.reduce((sum, s) => sum + s.count, 0), online, ...counts };
  }

  /**
   * The fleet's telemetry ingest over the last hour: readings stored per minute of arrival, one
   * entry for each of the last 60 minutes (0 where none arrived), oldest first; the last is the
   * minute under way, counted so far.
   */
  async ingestRate(actor: Actor): Promise<IngestRateView> {
    requirePermission(actor, 'devices:read');
    const to = (Math.floor(this.clock.now() / 60_000) + 1) * 60_000;
    const from = to - INGEST_WINDOW_MINUTES * 60_000;
    const counted = new Map(
      (await this.store.readingsPerMinute(actor.organizationId, from, to)).map((row) => [row.minute * 60_000, row.readings]),
    );
    const minutes = Array.from({ length: INGEST_WINDOW_MINUTES }, (_, i) => {
      const start = from + i * 60_000;
      return { start: iso(start), readings: counted.get(start) ?? 0 };
    });
    return { from: iso(from), to: iso(to), minutes };
  }

  async presence(actor: Actor, deviceId: string): Promise<PresenceView> {
    await this.devices.get(actor, deviceId);
    const row = await this.store.presence(deviceId);
    if (!row) return { online: false, since: null, node: null, protocol: null };
    return {
      online: row.connected_since !== null,
      since: iso(row.connected_since ?? row.changed_at),
      node: row.node_id,
      protocol: row.protocol,
    };
  }

  private range(query: RangeQuery): { from: number; to: number } {
    const now = this.clock.now();
    const to = query.to === undefined ? now + MAX_FUTURE_MS : instant(query.to, 'to');
    const from = query.from === undefined ? Math.min(to, now) - DEFAULT_WINDOW_MS : instant(query.from, 'from');
    if (from >= to) throw new InvalidRangeError(from, to);
    return { from, to };
  }
}
