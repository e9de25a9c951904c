/**
 * Gateways (issue 14), under /api/v1/devices/:id: make a device a gateway (or an ordinary device
 * again), list its children, register a new child or attach an existing device (a move when it
 * was another gateway's child), detach a child. Every route needs devices:read or devices:write.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { GatewaysService } from '../gateways.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, Strict } from '../../transport/http/schemas.js';
import { Status } from './schemas.js';

const Child = Strict({ deviceId: Type.String(), serial: Type.String(), productId: Type.String(), status: Status });
const GatewayRole = Strict({ deviceId: Type.String(), gateway: Type.Boolean(), gatewayId: Type.Union([Type.String(), Type.Null()]) });

export function gatewayRoutes({ gateways }: { gateways: GatewaysService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
    const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;

    app.put(
      '/devices/:id/gateway',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Make the device a gateway (it may then register and relay child devices), or an ordinary device again',
          params: IdParams,
          body: Strict({ enabled: Type.Boolean() }),
          response: { 200: GatewayRole, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => {
        const view = await gateways.setGateway(actorOf(request), request.params.id, request.body.enabled);
        return { deviceId: view.id, gateway: view.gateway, gatewayId: view.gatewayId };
      },
    );
    app.get(
      '/devices/:id/children',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: "The gateway's children, in serial order",
          params: IdParams,
          response: { 200: Strict({ children: Type.Array(Child) }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => ({ children: await gateways.listChildren(actorOf(request), request.params.id) }),
    );
    app.post(
      '/devices/:id/children',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary:
            'Register a new child of the gateway (serial and product), or attach an existing device by its ID (moving it from its gateway)',
          params: IdParams,
          body: Type.Union([
            Strict({ deviceId: Id }),
            Strict({
              serial: Type.String({ minLength: 1, maxLength: 128 }),
              productId: Type.Optional(Id),
              product: Type.Optional(Type.String({ maxLength: 100 })),
            }),
          ]),
          response: { 200: Child, 201: Child, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        const body = request.body;
        if ('deviceId' in body) return reply.status(200).send(await gateways.attachChild(actor, request.params.id, body.deviceId));
        return reply.status(201).send(await gateways.registerChild(actor, request.params.id, body));
      },
    );
    app.delete(
      '/devices/:id/children/:childId',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Detach a child from the gateway: the gateway can no longer speak for it',
          params: Strict({ id: Id, childId: Id }),
          response: { 200: Strict({ deviceId: Type.String(), gatewayId: Type.Null() }), ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        await gateways.detachChild(actorOf(request), request.params.id, request.params.childId);
        return { deviceId: request.params.childId, gatewayId: null };
      },
    );
  };
}
