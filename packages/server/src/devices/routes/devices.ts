/**
 * The device registry API, under /api/v1: products, devices (register, read, update, list with
 * filters and cursor pagination), lifecycle actions, and bulk import of JSON lines or CSV, parsed
 * as the body streams in (only on the import route: this plugin's own content-type parsers).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorCodes, type DeviceView, type ProductView } from '@bulwark/protocol';
import { Type } from 'typebox';
import { BulwarkError } from '../../errors.js';
import type { DevicesService } from '../service.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { DEFAULT_MAX_ROWS, IMPORT_MEDIA_TYPES, parseImport, type ImportRow } from '../import-format.js';
import { LIFECYCLE_ACTIONS, type LifecycleAction } from '../lifecycle.js';
import { MAX_DAILY_BYTES, MAX_DAILY_READINGS, MAX_PAGE, MAX_RETENTION_DAYS } from '../service.js';
import { MAX_COMMANDS, MAX_PARAMS } from '../command-catalogue.js';
import { Status } from './schemas.js';

const Attributes = Type.Record(Type.String(), Type.Unknown());
const Tags = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 });
// null: no group.
const Group = Type.Union([Type.Null(), Type.String({ maxLength: 100 })]);
const Nullable = (t: ReturnType<typeof Type.String>) => Type.Union([t, Type.Null()]);

const RetentionDays = Type.Unsafe<number | null>({
  type: ['integer', 'null'],
  minimum: 1,
  maximum: MAX_RETENTION_DAYS,
  description: 'days of telemetry kept; null: the deployment default (telemetry.retentionDays)',
});
const DailyReadings = Type.Unsafe<number | null>({
  type: ['integer', 'null'],
  minimum: 1,
  maximum: MAX_DAILY_READINGS,
  description: 'readings each device may store per UTC day; null: the deployment default (telemetry.dailyReadingsPerDevice)',
});
const DailyBytes = Type.Unsafe<number | null>({
  type: ['integer', 'null'],
  minimum: 1024,
  maximum: MAX_DAILY_BYTES,
  description: 'telemetry payload bytes each device may store per UTC day; null: the deployment default (telemetry.dailyBytesPerDevice)',
});
const ProductSettings = {
  telemetryRetentionDays: Type.Optional(RetentionDays),
  telemetryDailyReadings: Type.Optional(DailyReadings),
  telemetryDailyBytes: Type.Optional(DailyBytes),
};
const CommandDeclarationSchema = Strict({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  description: Type.Optional(Type.String({ maxLength: 300 })),
  params: Type.Optional(
    Type.Array(
      Strict({
        name: Type.String({ minLength: 1, maxLength: 64 }),
        type: Type.Union([Type.Literal('string'), Type.Literal('number'), Type.Literal('integer'), Type.Literal('boolean')]),
        required: Type.Optional(Type.Boolean()),
        description: Type.Optional(Type.String({ maxLength: 300 })),
      }),
      { maxItems: MAX_PARAMS },
    ),
  ),
});
const ProductSchema = servesView<ProductView>()(
  Strict({
    id: Type.String(),
    name: Type.String(),
    hardwareRevision: Nullable(Type.String()),
    firmwareLine: Nullable(Type.String()),
    supportUntil: Type.Union([Timestamp, Type.Null()]),
    telemetryRetentionDays: RetentionDays,
    telemetryDailyReadings: DailyReadings,
    telemetryDailyBytes: DailyBytes,
    commands: Type.Union([Type.Array(CommandDeclarationSchema), Type.Null()]),
    createdAt: Timestamp,
  }),
);
const DeviceSchema = servesView<DeviceView>()(
  Strict({
    id: Type.String(),
    serial: Type.String(),
    productId: Type.String(),
    status: Status,
    firmwareVersion: Nullable(Type.String()),
    lastSeenAt: Type.Union([Timestamp, Type.Null()]),
    attributes: Attributes,
    tags: Type.Array(Type.String()),
    group: Group,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }),
);

function importFormat(request: FastifyRequest) {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const format = IMPORT_MEDIA_TYPES[type];
  if (!format)
    throw new BulwarkError(
      ErrorCodes.requestUnsupportedMediaType,
      'Send the import as application/x-ndjson (one JSON device a line) or text/csv (with a header line)',
      415,
    );
  return format;
}

export interface DeviceRouteDeps {
  devices: DevicesService;
  /** config.http.bodyLimitBytes: the import route's own limit is derived from it. */
  bodyLimitBytes: number;
}

export function deviceRoutes(deps: DeviceRouteDeps) {
  const service = deps.devices;
  const maxBytes = deps.bodyLimitBytes;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    for (const [type, format] of Object.entries(IMPORT_MEDIA_TYPES)) {
      app.addContentTypeParser(type, async (_request: FastifyRequest, payload: NodeJS.ReadableStream) =>
        parseImport(payload as AsyncIterable<Buffer>, format, { maxRows: DEFAULT_MAX_ROWS, maxBytes }),
      );
    }
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
    const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;

    app.post(
      '/products',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Create a product (a device model)',
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            hardwareRevision: Type.Optional(Type.String({ maxLength: 64 })),
            firmwareLine: Type.Optional(Type.String({ maxLength: 64 })),
            ...ProductSettings,
          }),
          response: { 201: ProductSchema, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await service.createProduct(actorOf(request), request.body)),
    );

    app.patch(
      '/products/:id',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: "Change a product's telemetry retention and daily quotas (audited)",
          params: IdParams,
          body: Strict(ProductSettings),
          response: { 200: ProductSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => service.updateProduct(actorOf(request), request.params.id, request.body),
    );

    app.put(
      '/products/:id/support-period',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary:
            "Declare the end of a product's support period (security updates until then; ETSI EN 303 645 5.3-13), or null to withdraw it",
          params: IdParams,
          body: Strict({ supportUntil: Type.Union([Timestamp, Type.Null()]) }),
          response: { 200: ProductSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) =>
        service.setSupportPeriod(
          actorOf(request),
          request.params.id,
          request.body.supportUntil === null ? null : Date.parse(request.body.supportUntil),
        ),
    );

    app.put(
      '/products/:id/commands',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary:
            "Declare the commands the product's devices take, with their parameters (or null to withdraw): the platform then refuses any other command or parameter",
          params: IdParams,
          body: Strict({ commands: Type.Union([Type.Array(CommandDeclarationSchema, { maxItems: MAX_COMMANDS }), Type.Null()]) }),
          response: { 200: ProductSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => service.declareCommands(actorOf(request), request.params.id, request.body.commands),
    );

    app.get(
      '/products',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: 'List products',
          response: { 200: Strict({ products: Type.Array(ProductSchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ products: await service.listProducts(actorOf(request)) }),
    );

    app.post(
      '/devices',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Register a device (status pending)',
          body: Strict({
            serial: Type.String({ minLength: 1, maxLength: 128 }),
            productId: Id,
            attributes: Type.Optional(Attributes),
            tags: Type.Optional(Tags),
            group: Type.Optional(Group),
          }),
          response: { 201: DeviceSchema, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await service.register(actorOf(request), request.body)),
    );

    app.get(
      '/devices',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: 'List devices in serial order, filtered, cursor-paginated',
          querystring: Strict({
            status: Type.Optional(Status),
            productId: Type.Optional(Id),
            group: Type.Optional(Type.String({ maxLength: 100 })),
            tag: Type.Optional(Type.String({ maxLength: 64 })),
            serialPrefix: Type.Optional(
              Type.String({ minLength: 1, maxLength: 128, description: 'serials that start with this text (taken literally)' }),
            ),
            firmwareVersion: Type.Optional(Type.String({ maxLength: 64 })),
            cursor: Type.Optional(Type.String({ maxLength: 512, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE })),
          }),
          response: {
            200: Strict({ devices: Type.Array(DeviceSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => service.list(actorOf(request), request.query),
    );

    app.post(
      '/devices/import',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Import devices from JSON lines or CSV: all rows or none, with a report of every bad line',
          response: { 200: Strict({ imported: Type.Integer() }), ...errorResponses(400, 401, 403, 413, 415) },
        },
      },
      async (request) => service.import(actorOf(request), request.body as ImportRow[], importFormat(request)),
    );

    app.get(
      '/devices/:id',
      {
        config: read,
        schema: { tags: ['devices'], params: IdParams, response: { 200: DeviceSchema, ...errorResponses(401, 403, 404) } },
      },
      async (request) => service.get(actorOf(request), request.params.id),
    );

    app.patch(
      '/devices/:id',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: "Replace a device's attributes, tags or group",
          params: IdParams,
          body: Strict({ attributes: Type.Optional(Attributes), tags: Type.Optional(Tags), group: Type.Optional(Group) }),
          response: { 200: DeviceSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => service.update(actorOf(request), request.params.id, request.body),
    );

    for (const action of Object.keys(LIFECYCLE_ACTIONS) as LifecycleAction[]) {
      app.post(
        `/devices/:id/${action}`,
        {
          config: write,
          schema: {
            tags: ['devices'],
            summary: `Set the device's status to ${LIFECYCLE_ACTIONS[action]}`,
            params: IdParams,
            response: { 200: DeviceSchema, ...errorResponses(401, 403, 404, 409) },
          },
        },
        async (request) => service.transition(actorOf(request), request.params.id, action),
      );
    }
  };
}
