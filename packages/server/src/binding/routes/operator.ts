/**
 * The operator side of binding under /api/v1/devices: issue claim codes (shown once, each with the
 * link its box label's QR code holds, on the public URL or else this node's address), see a device's binding (owner, shares, since; never a code), and
 * reset it (the device is unbound and erases its user data).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { publicBaseUrl } from '../../accounts/routes/public-url.js';
import { errorResponses, Id, IdParams, Strict } from '../../transport/http/schemas.js';
import { MAX_BULK_CODES, type ClaimService } from '../claims.js';
import type { BindingService } from '../service.js';
import { Binding } from './schemas.js';

export function operatorBindingRoutes({
  claims,
  binding,
  publicUrl,
}: {
  claims: ClaimService;
  binding: BindingService;
  /** config.http.publicUrl: the base of the label links. */
  publicUrl: string | undefined;
}) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['devices'];
    app.post(
      '/devices/claim-codes',
      {
        config: { auth: { principal: 'operator', permission: 'devices:write' } },
        schema: {
          tags,
          summary:
            "Make a new one-time claim code for each device (replacing any earlier one), with the link its box label's QR code holds; the codes are shown only in this answer",
          body: Strict({ deviceIds: Type.Array(Id, { minItems: 1, maxItems: MAX_BULK_CODES }) }),
          response: {
            201: Strict({
              codes: Type.Array(
                Strict({
                  deviceId: Type.String(),
                  serial: Type.String(),
                  productId: Type.String(),
                  code: Type.String(),
                  link: Type.String({
                    description: 'https://<platform>/app/add?product=<productId>#code=<code>: the QR code of the label',
                  }),
                }),
              ),
            }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send({ codes: await claims.issueCodes(actorOf(request), request.body.deviceIds, publicBaseUrl(publicUrl, root)) }),
    );
    app.get(
      '/devices/:id/binding',
      {
        config: { auth: { principal: 'operator', permission: 'devices:read' } },
        schema: {
          tags,
          summary:
            "The device's binding: owner, shares, pending invitations, when its claim code was made and used, its last user-data reset",
          params: IdParams,
          response: { 200: Binding, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => binding.operatorView(actorOf(request), request.params.id),
    );
    app.delete(
      '/devices/:id/binding',
      {
        config: { auth: { principal: 'operator', permission: 'devices:write' } },
        schema: {
          tags,
          summary: 'Reset the binding: the owner and every share lose the device, which erases its user data and can be claimed again',
          params: IdParams,
          response: { 200: Binding, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => binding.operatorReset(actorOf(request), request.params.id),
    );
  };
}
