/**
 * API keys: my own (create after a step-up, list, revoke) and, for `users:manage` operators,
 * every key of the organization (list, revoke).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ApiKeyService } from '../api-keys.js';
import { actorOf } from './authentication.js';
import { errorResponses, Id, IdParams, Strict, Timestamp } from '../../transport/http/schemas.js';
import { MAX_KEY_LIFETIME_DAYS } from '../api-keys.js';
import { PERMISSIONS } from '../roles.js';

export const PermissionSchema = Type.Enum(PERMISSIONS);

export const ApiKeySchema = Strict({
  id: Type.String(),
  userId: Type.String(),
  name: Type.String(),
  scopes: Type.Array(PermissionSchema),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  revoked: Type.Boolean(),
  revokedAt: Type.Union([Timestamp, Type.Null()]),
  expired: Type.Boolean(),
});

export function apiKeyRoutes({ apiKeys }: { apiKeys: ApiKeyService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/me/api-keys',
      {
        config: { auth: { principal: 'operator' } },
        schema: {
          tags: ['me'],
          summary: 'Create an API key with some of my permissions (needs a recent step-up); the secret is shown once',
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Array(PermissionSchema, { minItems: 1, maxItems: PERMISSIONS.length, uniqueItems: true }),
            expiresInDays: Type.Integer({ minimum: 1, maximum: MAX_KEY_LIFETIME_DAYS }),
          }),
          response: {
            201: Strict({
              apiKey: ApiKeySchema,
              secret: Type.String({ description: 'Send as "Authorization: Bearer <secret>"; not stored, not shown again' }),
            }),
            ...errorResponses(400, 401, 403, 409),
          },
        },
      },
      async (request, reply) => reply.status(201).send(await apiKeys.create(actorOf(request), request.body)),
    );

    app.get(
      '/me/api-keys',
      {
        config: { auth: { principal: 'operator' } },
        schema: {
          tags: ['me'],
          summary: 'My API keys, newest first (never their secrets)',
          response: { 200: Strict({ apiKeys: Type.Array(ApiKeySchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ apiKeys: await apiKeys.listMine(actorOf(request)) }),
    );

    app.delete(
      '/me/api-keys/:id',
      {
        // Revoking only takes power away, so a key may revoke itself (or a sibling) when it is retired.
        config: { auth: { principal: 'operator', apiKeys: true } },
        schema: {
          tags: ['me'],
          summary: 'Revoke one of my API keys',
          params: IdParams,
          response: { 200: ApiKeySchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => apiKeys.revokeMine(actorOf(request), request.params.id),
    );

    app.get(
      '/api-keys',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: "API keys of my organization's users, newest first (cursor-paginated)",
          querystring: Strict({
            userId: Type.Optional(Id),
            before: Type.Optional(Type.String({ maxLength: 128, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          }),
          response: {
            200: Strict({ apiKeys: Type.Array(ApiKeySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => apiKeys.listInOrganization(actorOf(request), request.query),
    );

    app.delete(
      '/api-keys/:id',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: "Revoke an API key of one of my organization's users",
          params: IdParams,
          response: { 200: ApiKeySchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => apiKeys.revokeInOrganization(actorOf(request), request.params.id),
    );
  };
}
