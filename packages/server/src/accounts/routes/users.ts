/**
 * Operator administration of the organization: read it, list, create, read and change users,
 * unlock an account, reset a lost second factor. Every route is scoped to the caller's organization.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AccountsService } from '../service.js';
import { actorOf } from './authentication.js';
import { errorResponses, IdParams, Strict } from '../../transport/http/schemas.js';
import { Email, OrganizationSchema, Role, UserSchema } from './schemas.js';

export function userRoutes({ service }: { service: AccountsService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/org',
      {
        config: { auth: { principal: 'operator', permission: 'org:read' } },
        schema: { tags: ['organization'], summary: 'My organization', response: { 200: OrganizationSchema, ...errorResponses(401, 403) } },
      },
      async (request) => service.organization(actorOf(request)),
    );

    app.get(
      '/users',
      {
        config: { auth: { principal: 'operator', permission: 'users:read' } },
        schema: {
          tags: ['users'],
          summary: 'List users of my organization (sorted by email, cursor-paginated)',
          querystring: Strict({
            kind: Type.Optional(Type.Union([Type.Literal('operator'), Type.Literal('consumer')])),
            role: Type.Optional(Role),
            email: Type.Optional(Type.String({ maxLength: 254, description: 'substring of the email' })),
            after: Type.Optional(Type.String({ maxLength: 400, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          }),
          response: {
            200: Strict({ users: Type.Array(UserSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => service.listUsers(actorOf(request), request.query),
    );

    app.post(
      '/users',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: 'Create an operator with a one-time password they must change at first sign-in',
          body: Strict({ email: Email, name: Type.String({ minLength: 1, maxLength: 200 }), role: Role }),
          response: { 201: Strict({ user: UserSchema, oneTimePassword: Type.String() }), ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        const { user, oneTimePassword } = await service.createOperator(actorOf(request), request.body);
        return reply.status(201).send({ user, oneTimePassword: oneTimePassword! });
      },
    );

    app.get(
      '/users/:id',
      {
        config: { auth: { principal: 'operator', permission: 'users:read' } },
        schema: { tags: ['users'], params: IdParams, response: { 200: UserSchema, ...errorResponses(401, 403, 404) } },
      },
      async (request) => service.getUser(actorOf(request), request.params.id),
    );

    app.patch(
      '/users/:id',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: "Change a user's role, status or name (role and status changes end their sessions)",
          params: IdParams,
          body: Strict(
            {
              role: Type.Optional(Role),
              status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
              name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            },
            {},
          ),
          response: { 200: UserSchema, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => service.updateUser(actorOf(request), request.params.id, request.body),
    );

    app.post(
      '/users/:id/unlock',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: 'Lift a sign-in lockout',
          params: IdParams,
          response: { 200: UserSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => service.unlock(actorOf(request), request.params.id),
    );

    app.post(
      '/users/:id/mfa-reset',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: "Remove a user's second factor (lost device); needs a recent step-up",
          params: IdParams,
          response: { 200: UserSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => service.resetMfa(actorOf(request), request.params.id),
    );
  };
}
