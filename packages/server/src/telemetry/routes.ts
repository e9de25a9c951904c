/**
 * The telemetry query API, under /api/v1/devices/:id: readings by time range (cursor pages),
 * downsampled aggregates, the latest value of each name, today's usage of the daily quota, and the device's presence;
 * under /api/v1/fleet the fleet summary and the ingest rate of the last hour. Read-only;
 * permission devices:read; the service scopes every query to the caller's organization.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { TelemetryQuota } from './quota.js';
import { actorOf } from '../accounts/routes/authentication.js';
import type {
  BucketValueView,
  FleetSummaryView,
  IngestRateView,
  LatestView,
  PresenceView,
  TelemetryAggregateView,
} from '@bulwark/protocol';
import { errorResponses, IdParams, servesView, Strict, Timestamp } from '../transport/http/schemas.js';
import { INGEST_WINDOW_MINUTES, MAX_BUCKETS, MAX_LIMIT, type TelemetryService } from './service.js';

const Instant = (what: string) =>
  Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: `${what}: ISO 8601 date-time or milliseconds since the epoch` }));
const Range = {
  from: Instant('start, inclusive (default: a day before `to`, or before now)'),
  to: Instant('end, exclusive (default: now + 24 h, the latest a reading may be stamped)'),
};
const Value = Type.Union([Type.Null(), Type.Boolean(), Type.Number(), Type.String()]);
const Values = Type.Record(Type.String(), Value);

export const ReadingsPage = Strict({
  readings: Type.Array(Strict({ ts: Timestamp, receivedAt: Timestamp, values: Values })),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
const BucketValue = servesView<BucketValueView>()(
  Strict({
    count: Type.Integer({ description: 'readings of this name in the bucket' }),
    avg: Type.Optional(Type.Number()),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    last: Type.Optional(Value),
    lastAt: Type.Optional(Timestamp),
  }),
);
const Aggregate = servesView<TelemetryAggregateView>()(
  Strict({
    from: Timestamp,
    to: Timestamp,
    interval: Type.String(),
    intervalMs: Type.Integer(),
    buckets: Type.Array(Strict({ start: Timestamp, values: Type.Record(Type.String(), BucketValue) })),
  }),
);
export const Latest = servesView<LatestView>()(
  Strict({
    lookback: Type.Integer({ description: 'readings looked at, newest first' }),
    values: Type.Record(Type.String(), Strict({ value: Value, ts: Timestamp })),
  }),
);
const Usage = Strict({
  day: Type.String({ description: 'the UTC day counted (YYYY-MM-DD); counts start again at 00:00 UTC' }),
  readings: Type.Integer({ description: 'readings admitted today' }),
  bytes: Type.Integer({ description: 'telemetry payload bytes admitted today' }),
  limits: Strict({ readings: Type.Integer(), bytes: Type.Integer() }),
  source: Strict({
    readings: Type.Union([Type.Literal('product'), Type.Literal('default')]),
    bytes: Type.Union([Type.Literal('product'), Type.Literal('default')]),
  }),
});
const Count = Type.Integer({ minimum: 0 });
const FleetSummary = servesView<FleetSummaryView>()(
  Strict({
    total: Count,
    online: Count,
    byStatus: Type.Array(Strict({ status: Type.String(), count: Count })),
    byProduct: Type.Array(Strict({ productId: Type.String(), count: Count })),
    byFirmware: Type.Array(Strict({ version: Type.Union([Type.String(), Type.Null()]), count: Count })),
  }),
);
const IngestRate = servesView<IngestRateView>()(
  Strict({
    from: Timestamp,
    to: Timestamp,
    minutes: Type.Array(Strict({ start: Timestamp, readings: Count })),
  }),
);
const Presence = servesView<PresenceView>()(
  Strict({
    online: Type.Boolean(),
    since: Type.Union([Timestamp, Type.Null()]),
    node: Type.Union([Type.String(), Type.Null()]),
    protocol: Type.Union([Type.String(), Type.Null()]),
  }),
);

export function telemetryRoutes({ telemetry: service, quota }: { telemetry: TelemetryService; quota: TelemetryQuota }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;

    app.get(
      '/devices/:id/telemetry',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: "A device's readings in a time range, oldest first, cursor-paginated",
          params: IdParams,
          querystring: Strict({
            ...Range,
            limit: Type.Optional(
              Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: `readings per page (default 1000, at most ${MAX_LIMIT})` }),
            ),
            cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
          }),
          response: { 200: ReadingsPage, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => service.readings(actorOf(request), request.params.id, request.query),
    );

    app.get(
      '/devices/:id/telemetry/aggregate',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: `A device's readings downsampled into buckets: count, avg, min, max of numbers, the latest other value (at most ${MAX_BUCKETS} buckets)`,
          params: IdParams,
          querystring: Strict({
            ...Range,
            interval: Type.String({
              pattern: '^[1-9][0-9]{0,4}[smhd]$',
              description: 'bucket width: a number and s, m, h or d (1m, 5m, 1h, 1d); buckets start at multiples of it since the epoch',
            }),
            values: Type.Optional(
              Type.String({ minLength: 1, maxLength: 4200, description: 'comma-separated value names (default: all)' }),
            ),
          }),
          response: { 200: Aggregate, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => service.aggregate(actorOf(request), request.params.id, request.query),
    );

    app.get(
      '/devices/:id/telemetry/latest',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: "The latest value of each of a device's value names, within its last 10,000 readings",
          params: IdParams,
          response: { 200: Latest, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => service.latest(actorOf(request), request.params.id),
    );

    app.get(
      '/devices/:id/telemetry/usage',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: "A device's telemetry admitted today against its daily quota (may lag another node by a few seconds)",
          params: IdParams,
          response: { 200: Usage, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => quota.usageOf(actorOf(request), request.params.id),
    );

    app.get(
      '/fleet/summary',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: 'The fleet overview: devices by status, product and firmware version (the 12 most common), and how many are online now',
          response: { 200: FleetSummary, ...errorResponses(401, 403) },
        },
      },
      async (request) => service.fleetSummary(actorOf(request)),
    );

    app.get(
      '/fleet/telemetry/rate',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: `Telemetry ingest over the last hour: readings stored per minute of arrival, the last ${INGEST_WINDOW_MINUTES} minutes oldest first (the last one under way, counted so far)`,
          response: { 200: IngestRate, ...errorResponses(401, 403) },
        },
      },
      async (request) => service.ingestRate(actorOf(request)),
    );

    app.get(
      '/devices/:id/presence',
      {
        config: read,
        schema: {
          tags: ['telemetry'],
          summary: 'Whether the device is connected, since when, to which node and by which protocol',
          params: IdParams,
          response: { 200: Presence, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => service.presence(actorOf(request), request.params.id),
    );
  };
}
