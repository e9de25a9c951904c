/**
 * The app-authorization routes under /api/v1: operators (org:manage) register, list and disable
 * their organization's app clients and rotate, list and retire its access-token signing keys;
 * consumers list the apps they let in and withdraw their consent.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { APP_SCOPES } from '../../accounts/roles.js';
import { errorResponses, Strict, Timestamp } from '../../transport/http/schemas.js';
import { MAX_REDIRECT_URIS, type AppClientService } from '../clients.js';
import type { AppSigningKeys } from '../signing-keys.js';

const ScopeSchema = Type.Enum(APP_SCOPES);
const ClientIdParam = Strict({ clientId: Type.String({ minLength: 1, maxLength: 64 }) });

export const AppClientSchema = Strict({
  clientId: Type.String(),
  name: Type.String(),
  redirectUris: Type.Array(Type.String()),
  scopes: Type.Array(ScopeSchema),
  firstParty: Type.Boolean(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const SigningKeySchema = Strict({
  kid: Type.String(),
  algorithm: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('verifying'), Type.Literal('retired')]),
  createdAt: Timestamp,
  rotatedAt: Type.Union([Timestamp, Type.Null()]),
  retiredAt: Type.Union([Timestamp, Type.Null()]),
});

const AppGrantSchema = Strict({
  clientId: Type.String(),
  name: Type.String(),
  firstParty: Type.Boolean(),
  consentedScopes: Type.Array(ScopeSchema),
  activeGrants: Type.Integer(),
});

export function appClientRoutes({ clients, keys }: { clients: AppClientService; keys: AppSigningKeys }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const manage = { auth: { principal: 'operator' as const, permission: 'org:manage' as const } };

    app.post(
      '/apps/clients',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: 'Register an app client (public, PKCE): its exact redirect URIs and the scopes it may ask for',
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 200 }),
            redirectUris: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { minItems: 1, maxItems: MAX_REDIRECT_URIS }),
            scopes: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: APP_SCOPES.length }),
            firstParty: Type.Boolean({ description: "the brand's own app: its users are not asked for consent" }),
          }),
          response: { 201: AppClientSchema, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await clients.create(actorOf(request), request.body)),
    );

    app.get(
      '/apps/clients',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: "The organization's app clients",
          response: { 200: Strict({ clients: Type.Array(AppClientSchema) }) },
        },
      },
      async (request) => ({ clients: await clients.list(actorOf(request)) }),
    );

    app.post(
      '/apps/clients/:clientId/disable',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: 'Disable an app client: no new authorizations, and every grant it holds ends now',
          params: ClientIdParam,
          response: { 200: AppClientSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => clients.disable(actorOf(request), request.params.clientId),
    );

    app.get(
      '/apps/keys',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: "The organization's access-token signing keys (active, verifying during the overlap, retired)",
          response: { 200: Strict({ keys: Type.Array(SigningKeySchema) }) },
        },
      },
      async (request) => ({ keys: await keys.list(actorOf(request)) }),
    );

    app.post(
      '/apps/keys/rotate',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: 'Make a new signing key active; the previous one keeps verifying until it is retired',
          response: { 201: SigningKeySchema, ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        return reply.status(201).send(await keys.rotate(actor, actor.organizationId));
      },
    );

    app.post(
      '/apps/keys/:kid/retire',
      {
        config: manage,
        schema: {
          tags: ['apps'],
          summary: 'Retire a signing key now: tokens it signed are refused (the active key is rotated first)',
          params: Strict({ kid: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: SigningKeySchema, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        return keys.retire(actor, actor.organizationId, request.params.kid);
      },
    );

    app.get(
      '/me/apps',
      {
        config: { auth: { principal: 'consumer' } },
        schema: {
          tags: ['me'],
          summary: 'The apps I let in: consented scopes and live grants',
          response: { 200: Strict({ apps: Type.Array(AppGrantSchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ apps: await clients.grantsOf(actorOf(request)) }),
    );

    app.delete(
      '/me/apps/:clientId',
      {
        config: { auth: { principal: 'consumer' } },
        schema: {
          tags: ['me'],
          summary: 'Withdraw my consent to an app and end every grant it holds for me',
          params: ClientIdParam,
          response: { 200: Strict({ grantsEnded: Type.Integer() }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => clients.withdraw(actorOf(request), request.params.clientId),
    );
  };
}
