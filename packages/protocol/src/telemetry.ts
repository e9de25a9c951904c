/**
 * Telemetry as the API serves it: a device's readings (`…/telemetry`) and the latest value of each
 * name (`…/telemetry/latest`). Built by the server (server/src/telemetry/service.ts) and read by
 * @bulwark/app-sdk and the companion app.
 */
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
