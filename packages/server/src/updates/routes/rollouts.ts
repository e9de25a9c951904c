/**
 * HTTP doors of the director and rollouts. Devices (mutual TLS, their own certificate; a
 * quarantined device keeps its update path, a disabled or retired one is refused, failed proofs
 * count against the client address):
 * `GET /device/v1/updates/director/root.json`, `…/<version>.root.json` and `…/targets.json`, and
 * `GET /device/v1/updates/metadata.json`, all an update check reads in one answer. Operators:
 * /api/v1/updates/rollouts (create, list, read with counts, devices by state, change settings, retry devices,
 * pause, resume, abort) and /api/v1/devices/:id/updates (the device's latest version report and rollout state).
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  DIRECTOR_ROOT_PATH,
  DIRECTOR_TARGETS_PATH,
  ErrorCodes,
  PRODUCT_ID_PATTERN,
  ROLLOUT_DEVICE_STATES,
  UPDATE_METADATA_PATH,
  type RolloutDeviceState,
  type UpdateMetadata,
} from '@bulwark/protocol';
import { AuthenticationError, BulwarkError, NotFoundError } from '../../errors.js';
import { DeviceAuthenticationError, type DeviceIdentity } from '../../devices/identity.js';
import type { DeviceCertificateVerifier } from '../../devices/identity.js';
import type { TufRepository } from '../repository.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { limited, type FailureLimiter, type FailureLimiterFactory } from '../../transport/http/failure-limiter.js';
import { errorResponses, Id, IdParams, Strict, Timestamp } from '../../transport/http/schemas.js';
import { NoDirectorRootError } from '../rollout-errors.js';
import {
  MAX_ATTEMPTS,
  MAX_BACKOFF_SECONDS,
  MAX_CONCURRENT_DOWNLOADS,
  MAX_OFFER_TIMEOUT_SECONDS,
  MAX_PHASES,
  MAX_SELECTOR_ENTRIES,
  MAX_SOAK_SECONDS,
  MIN_OFFER_TIMEOUT_SECONDS,
} from '../rollout-model.js';
import { MAX_DEVICES_PAGE, type RolloutService } from '../rollouts.js';

const Signed = Type.Unknown({ description: 'Signed TUF metadata' });

const MetadataVersion = Type.Integer({ minimum: 1, maximum: 999_999_999 });
const UpdateMetadataQuery = Strict({
  directorRoot: MetadataVersion,
  root: MetadataVersion,
  snapshot: Type.Optional(MetadataVersion),
  product: Type.Optional(Type.String({ pattern: PRODUCT_ID_PATTERN.source })),
});
const MetadataText = Type.String({ description: 'signed TUF metadata, byte for byte as its own route serves it' });
const UpdateMetadataAnswer = Strict({
  director: Strict({ roots: Type.Array(MetadataText), latestRoot: Type.Integer(), targets: MetadataText }),
  repository: Strict({ latestRoot: Type.Integer(), files: Type.Record(Type.String(), MetadataText) }),
});

/** Every version of the director root: a parameter route beside the static root.json and targets.json (static routes win). */
const DIRECTOR_ROOT_VERSION_ROUTE = DIRECTOR_ROOT_PATH.replace(/root\.json$/, ':file');

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
const Entries = Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: MAX_SELECTOR_ENTRIES }));
const Selector = Strict({ groups: Entries, tags: Entries, deviceIds: Entries, firmwareVersions: Entries });
const Phase = Strict({
  percent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
  soakSeconds: Type.Integer({ minimum: 0, maximum: MAX_SOAK_SECONDS }),
});
const DeviceState = Type.Unsafe<RolloutDeviceState>(Type.Union(ROLLOUT_DEVICE_STATES.map((state) => Type.Literal(state))));
const Count = Type.Integer();
const Counts = Strict(Object.fromEntries(ROLLOUT_DEVICE_STATES.map((state) => [state, Count])) as Record<RolloutDeviceState, typeof Count>);
const ErrorEntry = Strict({ code: Type.String(), message: Type.String() });
const Fraction = Type.Number({ exclusiveMinimum: 0, maximum: 1 });
const Retry = Strict({
  maxAttempts: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS, description: 'offers per device in all; 1 = no retry (default)' }),
  backoffSeconds: Type.Integer({
    minimum: 0,
    maximum: MAX_BACKOFF_SECONDS,
    description: 'wait before the first retry, doubled for each later one, at most a day (default 300)',
  }),
});
const TimeOfDay = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' });
const Window = Strict(
  { start: TimeOfDay, end: TimeOfDay, timeZone: Type.String({ minLength: 1, maxLength: 64 }) },
  {
    description:
      'devices are offered the release only between start and end (HH:MM; an end before the start wraps past midnight) in timeZone',
  },
);
const Settings = {
  successThreshold: Type.Optional(Fraction),
  failureThreshold: Type.Optional(Fraction),
  pauseThreshold: Type.Optional(
    Nullable(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        description: 'pause for an operator at this failure fraction (below failureThreshold)',
      }),
    ),
  ),
  retry: Type.Optional(
    Strict({ maxAttempts: Type.Optional(Retry.properties.maxAttempts), backoffSeconds: Type.Optional(Retry.properties.backoffSeconds) }),
  ),
  window: Type.Optional(Nullable(Window)),
};

const RolloutProperties = {
  id: Type.String(),
  name: Type.String(),
  releaseId: Type.String(),
  productId: Type.String(),
  status: Type.Union([
    Type.Literal('running'),
    Type.Literal('paused'),
    Type.Literal('halted'),
    Type.Literal('aborted'),
    Type.Literal('completed'),
  ]),
  selector: Selector,
  phases: Type.Array(Phase),
  successThreshold: Type.Number(),
  failureThreshold: Type.Number(),
  maxConcurrentDownloads: Type.Integer(),
  offerTimeoutSeconds: Type.Integer(),
  pauseThreshold: Nullable(Type.Number()),
  retry: Retry,
  window: Nullable(Window),
  currentPhase: Type.Integer(),
  phaseStartedAt: Timestamp,
  deviceCount: Type.Integer(),
  skippedCount: Type.Integer({ description: 'selected devices left out because they were in another unfinished rollout' }),
  createdBy: Nullable(Type.String()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Nullable(Timestamp),
};
const Rollout = Strict(RolloutProperties);
const RolloutDetail = Strict({
  ...RolloutProperties,
  counts: Counts,
  currentPhaseCounts: Counts,
  retrying: Type.Integer({ description: 'pending devices waiting for a retry after a transient failure' }),
});
const Created = Strict({ ...RolloutProperties, enrolled: Type.Integer(), skipped: Type.Integer() });
const RolloutDevice = Strict({
  deviceId: Type.String(),
  phase: Type.Integer(),
  state: DeviceState,
  error: Nullable(ErrorEntry),
  offeredAt: Nullable(Timestamp),
  updatedAt: Timestamp,
  attempts: Type.Integer({ description: 'offers the device had in this rollout' }),
  retryAt: Nullable(Timestamp),
});
const DeviceUpdates = Strict({
  deviceId: Type.String(),
  firmwareVersion: Nullable(Type.String()),
  report: Nullable(
    Strict({
      deviceId: Type.String(),
      counter: Type.Integer(),
      ts: Type.Number(),
      running: Strict({ target: Nullable(Type.String()), version: Nullable(Type.String()), sha256: Nullable(Type.String()) }),
      slot: Type.String(),
      securityVersion: Type.Integer(),
      errors: Type.Array(ErrorEntry),
      receivedAt: Timestamp,
    }),
  ),
  rollout: Nullable(
    Strict({
      id: Type.String(),
      status: Type.String(),
      releaseId: Type.String(),
      version: Type.String(),
      target: Type.String(),
      phase: Type.Integer(),
      state: DeviceState,
      error: Nullable(ErrorEntry),
      offeredAt: Nullable(Timestamp),
      updatedAt: Timestamp,
      attempts: Type.Integer(),
      retryAt: Nullable(Timestamp),
    }),
  ),
});

/**
 * The DER bytes of the client certificate of a TLS connection, read once per connection: a device
 * keeps its connection alive across requests. A TLS 1.3 connection cannot change its peer; a TLS
 * 1.2 renegotiation could only present another certificate whose key the same client holds, and
 * the one read first is still checked (record, revocation, device status) on every request.
 */
const peerCertificates = new WeakMap<object, Buffer | null>();
function peerCertificateOf(socket: Partial<TLSSocket>): Buffer | null {
  let raw = peerCertificates.get(socket);
  if (raw === undefined) {
    raw = typeof socket.getPeerX509Certificate === 'function' ? (socket.getPeerX509Certificate()?.raw ?? null) : null;
    peerCertificates.set(socket, raw);
  }
  return raw;
}

/**
 * The identity the client certificate of this TLS connection proves (checked by the platform, not
 * by TLS). Failed proofs count against the client address, as on the other device doors.
 */
function deviceOf(identity: DeviceCertificateVerifier, limiter: FailureLimiter, request: FastifyRequest): Promise<DeviceIdentity> {
  return limited(
    limiter,
    request.ip,
    async () => {
      const raw = peerCertificateOf(request.raw.socket as Partial<TLSSocket>);
      if (!raw)
        throw new AuthenticationError(
          "The director needs the device's certificate as TLS client certificate",
          ErrorCodes.deviceCertificateRequired,
        );
      return identity.fromCertificate(raw);
    },
    (error) => {
      if (!(error instanceof BulwarkError && error.status === 401)) return false;
      if (error instanceof DeviceAuthenticationError) request.log.warn({ reason: error.reason }, 'director: device authentication refused');
      return true;
    },
  );
}

export interface RolloutRouteDeps {
  rollouts: RolloutService;
  repository: TufRepository;
  /** Proves the device behind the director's mutual-TLS routes. */
  identity: DeviceCertificateVerifier;
  loginRateLimitPerMinute: number;
  /** Where failed proofs are counted (in Redis across the deployment when it has one). */
  failureLimiters: FailureLimiterFactory;
}

export function rolloutRoutes(deps: RolloutRouteDeps) {
  const { rollouts, repository, identity: verifier } = deps;
  const limiter = deps.failureLimiters('director', deps.loginRateLimitPerMinute);
  return async function plugin(root: FastifyInstance): Promise<void> {
    await root.register(async (scope) => {
      const app = scope.withTypeProvider<TypeBoxTypeProvider>();
      const device = { auth: { principal: 'none' as const } };
      app.get(
        DIRECTOR_ROOT_PATH,
        {
          config: device,
          schema: {
            tags: ['device'],
            summary: "The organization's director root (signed offline), for the agent to pin",
            response: { 200: Signed, ...errorResponses(401, 404, 429) },
          },
        },
        async (request, reply) => {
          const identity = await deviceOf(verifier, limiter, request);
          const rootMetadata = await repository.directorRoot(identity.organizationId);
          if (!rootMetadata) throw new NoDirectorRootError();
          reply.header('cache-control', 'no-store');
          return rootMetadata;
        },
      );
      app.get(
        DIRECTOR_ROOT_VERSION_ROUTE,
        {
          config: device,
          schema: {
            tags: ['device'],
            summary: 'One version of the director root (`<version>.root.json`), for an agent pinned to an older root to walk the chain',
            params: Strict({ file: Type.String({ maxLength: 64 }) }),
            response: { 200: Signed, ...errorResponses(401, 404, 429) },
          },
        },
        async (request, reply) => {
          const identity = await deviceOf(verifier, limiter, request);
          const match = /^([1-9]\d{0,8})\.root\.json$/.exec(request.params.file);
          if (!match)
            throw new NotFoundError('Director metadata file', {
              file: request.params.file,
              expected: '<version>.root.json, root.json or targets.json',
            });
          const version = Number(match[1]);
          const rootMetadata = await repository.directorRootVersion(identity.organizationId, version);
          if (!rootMetadata) throw new NoDirectorRootError(version);
          reply.header('cache-control', 'no-store');
          return rootMetadata;
        },
      );
      app.get(
        DIRECTOR_TARGETS_PATH,
        {
          config: device,
          schema: {
            tags: ['device'],
            summary: "This device's director targets metadata (zero or one target), signed by the online director key",
            response: { 200: Signed, ...errorResponses(401, 404, 429) },
          },
        },
        async (request, reply) => {
          const identity = await deviceOf(verifier, limiter, request);
          const signed = await rollouts.directorTargets(identity);
          reply.header('cache-control', 'no-store');
          return signed.metadata;
        },
      );
      app.get(
        UPDATE_METADATA_PATH,
        {
          config: device,
          schema: {
            tags: ['device'],
            summary:
              "All an update check reads, in one answer: the director roots after the device's, its director targets, and the image repository's newer roots, timestamp, and (unless the device holds it) snapshot with the top-level and product targets it names",
            querystring: UpdateMetadataQuery,
            response: { 200: UpdateMetadataAnswer, ...errorResponses(400, 401, 404, 429) },
          },
        },
        async (request, reply): Promise<UpdateMetadata> => {
          const identity = await deviceOf(verifier, limiter, request);
          const metadata = await repository.checkMetadata(identity.organizationId, request.query);
          if (!metadata) throw new NoDirectorRootError();
          const targets = await rollouts.directorTargets(identity);
          reply.header('cache-control', 'no-store');
          return {
            // As DIRECTOR_TARGETS_PATH serializes it: the device compares the bytes of a version it saw twice.
            director: { roots: metadata.directorRoots, latestRoot: metadata.directorLatestRoot, targets: JSON.stringify(targets.metadata) },
            repository: { latestRoot: metadata.latestRoot, files: metadata.files },
          };
        },
      );
    });

    await root.register(
      async (scope) => {
        const app = scope.withTypeProvider<TypeBoxTypeProvider>();
        const read = { auth: { principal: 'operator', permission: 'rollouts:read' } } as const;
        const manage = { auth: { principal: 'operator', permission: 'rollouts:manage' } } as const;

        app.post(
          '/updates/rollouts',
          {
            config: manage,
            schema: {
              tags: ['updates'],
              summary: 'Start a rollout of a release to the selected devices of its product (snapshotted now), in phases',
              body: Strict({
                releaseId: Id,
                name: Type.Optional(Type.String({ maxLength: 200 })),
                selector: Selector,
                phases: Type.Optional(Type.Array(Phase, { minItems: 1, maxItems: MAX_PHASES })),
                ...Settings,
                maxConcurrentDownloads: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CONCURRENT_DOWNLOADS })),
                offerTimeoutSeconds: Type.Optional(
                  Type.Integer({
                    minimum: MIN_OFFER_TIMEOUT_SECONDS,
                    maximum: MAX_OFFER_TIMEOUT_SECONDS,
                    description: 'an offered device silent this long gives its download slot back (default 3600)',
                  }),
                ),
              }),
              response: { 201: Created, ...errorResponses(400, 401, 403, 404, 409) },
            },
          },
          async (request, reply) => reply.status(201).send(await rollouts.create(actorOf(request), request.body)),
        );
        app.post(
          '/updates/rollouts/preview',
          {
            config: manage,
            schema: {
              tags: ['updates'],
              summary: 'How many devices a rollout of this release with this selector would enrol now (nothing is created)',
              body: Strict({ releaseId: Id, selector: Selector }),
              response: {
                200: Strict({
                  matched: Type.Integer({ description: "devices of the release's product the selector matches (enrollable statuses)" }),
                  enrollable: Type.Integer({ description: 'of those, the devices a rollout would enrol now' }),
                  busy: Type.Integer({ description: 'of those, the devices another unfinished rollout holds (they would be skipped)' }),
                }),
                ...errorResponses(400, 401, 403, 404, 409),
              },
            },
          },
          async (request) => rollouts.preview(actorOf(request), request.body),
        );
        app.get(
          '/updates/rollouts',
          {
            config: read,
            schema: {
              tags: ['updates'],
              summary: "The organization's rollouts, newest first",
              querystring: Strict({ cursor: Type.Optional(Type.String({ maxLength: 300 })) }),
              response: {
                200: Strict({ rollouts: Type.Array(Rollout), nextCursor: Nullable(Type.String()) }),
                ...errorResponses(400, 401, 403),
              },
            },
          },
          async (request) => rollouts.list(actorOf(request), request.query),
        );
        app.get(
          '/updates/rollouts/:id',
          {
            config: read,
            schema: {
              tags: ['updates'],
              summary: 'A rollout with its devices counted per state (all, and up to the current phase)',
              params: IdParams,
              response: { 200: RolloutDetail, ...errorResponses(401, 403, 404) },
            },
          },
          async (request) => rollouts.get(actorOf(request), request.params.id),
        );
        app.get(
          '/updates/rollouts/:id/devices',
          {
            config: read,
            schema: {
              tags: ['updates'],
              summary: "A rollout's devices by device ID, optionally in one state (cursor pages)",
              params: IdParams,
              querystring: Strict({
                state: Type.Optional(DeviceState),
                cursor: Type.Optional(Type.String({ maxLength: 300 })),
                limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DEVICES_PAGE })),
              }),
              response: {
                200: Strict({ devices: Type.Array(RolloutDevice), nextCursor: Nullable(Type.String()) }),
                ...errorResponses(400, 401, 403, 404),
              },
            },
          },
          async (request) => rollouts.devicesOf(actorOf(request), request.params.id, request.query),
        );
        app.patch(
          '/updates/rollouts/:id',
          {
            config: manage,
            schema: {
              tags: ['updates'],
              summary: 'Change the thresholds, retry policy or schedule window of a rollout that has not finished (audited)',
              params: IdParams,
              body: Strict(Settings),
              response: { 200: Rollout, ...errorResponses(400, 401, 403, 404, 409) },
            },
          },
          async (request) => rollouts.update(actorOf(request), request.params.id, request.body),
        );
        app.post(
          '/updates/rollouts/:id/release',
          {
            config: manage,
            schema: {
              tags: ['updates'],
              summary:
                "Swap a paused or halted rollout's release for a fixed, newer release of the same product: every device waits again, from the first phase, paused until resumed (audited)",
              params: IdParams,
              body: Strict({ releaseId: Id }),
              response: { 200: Rollout, ...errorResponses(400, 401, 403, 404, 409) },
            },
          },
          async (request) => rollouts.swapRelease(actorOf(request), request.params.id, request.body.releaseId),
        );
        app.post(
          '/updates/rollouts/:id/retry',
          {
            config: manage,
            schema: {
              tags: ['updates'],
              summary: 'Offer the failed or rolled-back devices (all, or those named) the release again, attempts counted afresh',
              params: IdParams,
              body: Strict({ deviceIds: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: MAX_DEVICES_PAGE })) }),
              response: { 200: Strict({ retried: Type.Array(Type.String()) }), ...errorResponses(400, 401, 403, 404, 409) },
            },
          },
          async (request) => rollouts.retry(actorOf(request), request.params.id, request.body),
        );
        for (const action of ['pause', 'resume', 'abort'] as const) {
          app.post(
            `/updates/rollouts/:id/${action}`,
            {
              config: manage,
              schema: {
                tags: ['updates'],
                summary: `${action[0]!.toUpperCase()}${action.slice(1)} a rollout`,
                params: IdParams,
                response: { 200: Rollout, ...errorResponses(401, 403, 404, 409) },
              },
            },
            async (request) => rollouts[action](actorOf(request), request.params.id),
          );
        }
        app.get(
          '/devices/:id/updates',
          {
            config: read,
            schema: {
              tags: ['updates'],
              summary: "A device's latest signed version report and its state in its most recent rollout",
              params: IdParams,
              response: { 200: DeviceUpdates, ...errorResponses(401, 403, 404) },
            },
          },
          async (request) => rollouts.deviceUpdates(actorOf(request), request.params.id),
        );
      },
      { prefix: '/api/v1' },
    );
  };
}
