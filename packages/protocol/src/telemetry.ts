/**
 * Telemetry as the API serves it: a device's readings (`…/telemetry`), the latest value of each
 * name (`…/telemetry/latest`), the readings downsampled into buckets (`…/telemetry/aggregate`),
 * whether the device is connected (`…/presence`), and the fleet's summary and ingest rate
 * (`/fleet/…`). Built by the server (server/src/telemetry/service.ts) and read by
 * @bulwark/app-sdk, the companion app and the console.
 */
import type { DeviceStatus } from './devices.js';
import type { TelemetryValue } from './topics.js';

export interface ReadingView {
  ts: string;
  receivedAt: string;
  values: Record<string, TelemetryValue>;
}

export interface LatestView {
  lookback: number;
  values: Record<string, { value: TelemetryValue; ts: string }>;
}

/** One name's readings in a bucket. */
export interface BucketValueView {
  /** Readings of this name in the bucket, whatever their type. */
  count: number;
  /** Over the numeric readings; absent when there were none. */
  avg?: number;
  min?: number;
  max?: number;
  /** The latest non-numeric reading and its time; absent when every reading was a number. */
  last?: TelemetryValue;
  lastAt?: string;
}

export interface TelemetryAggregateView {
  from: string;
  to: string;
  interval: string;
  intervalMs: number;
  /** Buckets that hold readings, in time order; a bucket starts at a multiple of the interval since the epoch. */
  buckets: { start: string; values: Record<string, BucketValueView> }[];
}

/** The organization's readings per minute of arrival (`GET /api/v1/fleet/telemetry/rate`). */
export interface IngestRateView {
  from: string;
  to: string;
  minutes: { start: string; readings: number }[];
}

/** The organization's devices counted (`GET /api/v1/fleet/summary`). */
export interface FleetSummaryView {
  total: number;
  online: number;
  byStatus: { status: DeviceStatus; count: number }[];
  byProduct: { productId: string; count: number }[];
  byFirmware: { version: string | null; count: number }[];
}

export interface PresenceView {
  online: boolean;
  /** Connected since (online), or offline since; null when the device never connected. */
  since: string | null;
  node: string | null;
  protocol: string | null;
}
