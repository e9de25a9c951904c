/**
 * The doors of symmetric-key devices. Under /api/v1, for operators and API keys: issue or rotate
 * a device's key, and manage enrollment groups (a key or a group's key handed to a session needs a
 * recent step-up, like a credential rotation). Under /device/v1, for devices (no account; the
 * route checks `Authorization: SharedAccessSignature …` itself): self-registration through an
 * enrollment group, and the identity a token proves. Failed device authentications are counted
 * per client address (across the deployment with Redis: transport/http/failure-limiter.ts); past
 * `auth.loginRateLimitPerMinute` in a minute the address gets 429.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { BulwarkError } from '../../errors.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { limited, type FailureLimiterFactory } from '../../transport/http/failure-limiter.js';
import { errorResponses, Id, IdParams, Strict, Timestamp } from '../../transport/http/schemas.js';
import { DeviceAuthenticationError } from '../identity.js';
import { parseToken, SAS_PREFIX, SasFormatError } from '../sas.js';
import { MAX_GRACE_SECONDS, type EnrollmentGroupView, type SymmetricKeyService } from '../symmetric-keys.js';

const GroupSchema = Strict({
  id: Type.String(),
  name: Type.String(),
  productId: Type.String(),
  createdAt: Timestamp,
  disabledAt: Type.Union([Timestamp, Type.Null()]),
});
const Key = Type.String({ description: 'the 32-byte key, base64; shown once' });

function sasHeader(request: FastifyRequest): string {
  const header = request.headers.authorization ?? '';
  if (!header.startsWith(SAS_PREFIX))
    throw new DeviceAuthenticationError('malformed', `Send "Authorization: ${SAS_PREFIX}sr=…&se=…&sig=…"`);
  return header;
}

export function symmetricKeyRoutes(deps: {
  symmetricKeys: SymmetricKeyService;
  loginRateLimitPerMinute: number;
  failureLimiters: FailureLimiterFactory;
}) {
  const keys = deps.symmetricKeys;
  const limiter = deps.failureLimiters('device-sas', deps.loginRateLimitPerMinute);

  /** Runs a device-facing handler, counting its authentication failures against the client address. */
  function guarded<T>(request: FastifyRequest, handler: () => Promise<T>): Promise<T> {
    return limited(limiter, request.ip, handler, (error) => {
      if (!(error instanceof BulwarkError && (error.status === 401 || error.status === 403))) return false;
      if (error instanceof DeviceAuthenticationError) request.log.warn({ reason: error.reason }, 'device authentication refused');
      return true;
    });
  }

  return async function plugin(root: FastifyInstance): Promise<void> {
    await root.register(
      async (scope) => {
        const app = scope.withTypeProvider<TypeBoxTypeProvider>();
        const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
        const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;
        app.post(
          '/devices/:id/symmetric-key',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary:
                "Issue or rotate a device's symmetric key (shown once); the previous key stops at once or after graceSeconds; a session needs a recent step-up (an API key with devices:write does not)",
              params: IdParams,
              body: Strict({ graceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_GRACE_SECONDS })) }),
              response: {
                201: Strict({
                  deviceId: Type.String(),
                  version: Type.Integer(),
                  key: Key,
                  rotated: Type.Boolean(),
                  previousKeyValidUntil: Type.Union([Timestamp, Type.Null()]),
                }),
                ...errorResponses(400, 401, 403, 404, 409),
              },
            },
          },
          async (request, reply) => {
            const issued = await keys.issueKey(actorOf(request), request.params.id, request.body);
            return reply.status(201).send({ ...issued, previousKeyValidUntil: issued.previousKeyValidUntil?.toISOString() ?? null });
          },
        );
        app.post(
          '/enrollment-groups',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary:
                "Create an enrollment group: devices derive their key from the group's key (shown once) and register themselves; a session needs a recent step-up (an API key with devices:write does not)",
              body: Strict({ name: Type.String({ minLength: 1, maxLength: 100 }), productId: Id }),
              response: { 201: Strict({ ...GroupSchema.properties, key: Key }), ...errorResponses(400, 401, 403, 409) },
            },
          },
          async (request, reply) => reply.status(201).send(await keys.createGroup(actorOf(request), request.body)),
        );
        app.get(
          '/enrollment-groups',
          {
            config: read,
            schema: {
              tags: ['devices'],
              summary: 'List enrollment groups',
              response: { 200: Strict({ groups: Type.Array(GroupSchema) }), ...errorResponses(401, 403) },
            },
          },
          async (request) => ({ groups: await keys.listGroups(actorOf(request)) }),
        );
        app.post(
          '/enrollment-groups/:id/disable',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary: 'Disable an enrollment group: no device registers through it any more',
              params: IdParams,
              response: { 200: GroupSchema, ...errorResponses(401, 403, 404, 409) },
            },
          },
          async (request): Promise<EnrollmentGroupView> => keys.disableGroup(actorOf(request), request.params.id),
        );
      },
      { prefix: '/api/v1' },
    );

    await root.register(
      async (scope) => {
        const app = scope.withTypeProvider<TypeBoxTypeProvider>();
        const none = { auth: { principal: 'none' as const } };
        app.post(
          '/registrations',
          {
            config: none,
            schema: {
              tags: ['device'],
              summary: 'Register with a key derived from an enrollment group (SAS over registrations/<groupId>/<registrationId>)',
              body: Strict({
                groupId: Id,
                registrationId: Type.String({ minLength: 1, maxLength: 128, description: 'the device serial' }),
              }),
              response: { 200: Strict({ deviceId: Type.String(), created: Type.Boolean() }), ...errorResponses(400, 401, 403, 409, 429) },
            },
          },
          async (request) => guarded(request, () => keys.registerWithGroup(request.body, sasHeader(request), request.ip)),
        );
        app.get(
          '/identity',
          {
            config: none,
            schema: {
              tags: ['device'],
              summary: 'The identity a SAS token over devices/<deviceId> proves',
              response: {
                200: Strict({
                  organizationId: Type.String(),
                  deviceId: Type.String(),
                  serial: Type.String(),
                  productId: Type.String(),
                  status: Type.String(),
                  credential: Strict({ type: Type.Literal('symmetric_key'), keyVersion: Type.Integer(), tokenExpiresAt: Timestamp }),
                }),
                ...errorResponses(401, 429),
              },
            },
          },
          async (request) =>
            guarded(request, async () => {
              const token = sasHeader(request);
              let resource: string;
              try {
                resource = parseToken(token).resource;
              } catch (error) {
                if (error instanceof SasFormatError) throw new DeviceAuthenticationError('malformed');
                throw error;
              }
              if (!resource.startsWith('devices/')) throw new DeviceAuthenticationError('malformed');
              const identity = await keys.authenticate(resource.slice('devices/'.length), token);
              if (identity.credential.type !== 'symmetric_key') throw new DeviceAuthenticationError('malformed');
              return {
                ...identity,
                credential: { ...identity.credential, tokenExpiresAt: new Date(identity.credential.tokenExpiresAt).toISOString() },
              };
            }),
        );
      },
      { prefix: '/device/v1' },
    );
  };
}
