/**
 * Bootstrap CA routes under /api/v1/pki/bootstrap-cas: register (devices:write), list
 * (devices:read) and delete (devices:write) the manufacturer CAs whose certificates may enroll an
 * organization's pending devices over EST. Registered by the enrollment plugin, inside its scope.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { BootstrapCaService } from '../bootstrap-cas.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, IdParams, Ok, Strict, Timestamp } from '../../transport/http/schemas.js';

const BootstrapCa = Strict({
  id: Type.String(),
  name: Type.String(),
  subject: Type.String(),
  fingerprintSha256: Type.String(),
  notAfter: Timestamp,
  createdAt: Timestamp,
});

export function bootstrapCaRoutes({ bootstrapCas: service }: { bootstrapCas: BootstrapCaService }) {
  return async function register(scope: FastifyInstance): Promise<void> {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>();
    const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
    app.post(
      '/pki/bootstrap-cas',
      {
        config: write,
        schema: {
          tags: ['pki'],
          summary: "Register a manufacturer CA whose certificates may enroll the organization's pending devices once (EST simpleenroll)",
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            certificate: Type.String({ minLength: 1, maxLength: 16_384, description: 'The CA certificate (PEM)' }),
          }),
          response: { 201: BootstrapCa, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await service.register(actorOf(request), request.body)),
    );
    app.get(
      '/pki/bootstrap-cas',
      {
        config: read,
        schema: {
          tags: ['pki'],
          summary: 'The bootstrap CAs the organization trusts',
          response: { 200: Strict({ bootstrapCas: Type.Array(BootstrapCa) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ bootstrapCas: await service.list(actorOf(request)) }),
    );
    app.delete(
      '/pki/bootstrap-cas/:id',
      {
        config: write,
        schema: {
          tags: ['pki'],
          summary: 'Stop trusting a bootstrap CA (enrolled devices keep their certificates)',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await service.delete(actorOf(request), request.params.id);
        return { ok: true as const };
      },
    );
  };
}
