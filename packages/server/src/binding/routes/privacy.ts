/**
 * Consumer privacy over HTTP (docs/binding.md "Privacy"): operators declare what a product senses
 * and collects for which purpose (`/api/v1/products/:id/privacy`); consumers read it before they
 * claim (`/api/v1/my/products/:id/privacy`), see it with their device's consents, and the owner
 * grants or withdraws optional purposes (`/api/v1/my/devices/:id/consents`).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import type { DevicePrivacyView, PrivacyView } from '@bulwark/protocol';
import { errorResponses, IdParams, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import type { PrivacyService } from '../privacy.js';

const Purpose = {
  id: Type.String({ minLength: 1, maxLength: 32, description: 'a-z, 0-9, _ and -, starting with a letter' }),
  description: Type.String({ minLength: 1, maxLength: 500, description: 'why, in words a consumer reads before claiming' }),
  required: Type.Boolean({ description: 'needed for the device to work: accepted by claiming, ended only by unbinding' }),
  telemetry: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
    maxItems: 64,
    description: 'telemetry value names collected for it',
  }),
};
const Declaration = Strict({
  senses: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32, description: 'what the device senses' }),
  purposes: Type.Array(Strict(Purpose), { minItems: 1, maxItems: 16 }),
});
const PrivacySchema = servesView<PrivacyView>()(
  Strict({
    productId: Type.String(),
    declared: Type.Boolean(),
    senses: Type.Array(Type.String()),
    purposes: Type.Array(Strict(Purpose)),
    updatedAt: Type.Union([Timestamp, Type.Null()]),
  }),
);
const DevicePrivacySchema = servesView<DevicePrivacyView>()(
  Strict({
    deviceId: Type.String(),
    productId: Type.String(),
    declared: Type.Boolean(),
    senses: Type.Array(Type.String()),
    purposes: Type.Array(Strict({ ...Purpose, granted: Type.Boolean(), decidedAt: Type.Union([Timestamp, Type.Null()]) })),
    collected: Type.Union([Type.Array(Type.String()), Type.Null()], {
      description: 'telemetry names stored now; null: everything (nothing declared)',
    }),
  }),
);

export function privacyRoutes({ privacy }: { privacy: PrivacyService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.put(
      '/products/:id/privacy',
      {
        config: { auth: { principal: 'operator', permission: 'devices:write' } },
        schema: {
          tags: ['devices'],
          summary:
            'Declare what a product senses and which telemetry it collects for which purpose (audited); values it does not declare are not stored',
          params: IdParams,
          body: Declaration,
          response: { 200: PrivacySchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => privacy.declare(actorOf(request), request.params.id, request.body),
    );

    app.get(
      '/products/:id/privacy',
      {
        config: { auth: { principal: 'operator', permission: 'devices:read' } },
        schema: {
          tags: ['devices'],
          summary: "A product's privacy declaration",
          params: IdParams,
          response: { 200: PrivacySchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => privacy.productPrivacy(actorOf(request), request.params.id),
    );

    app.get(
      '/my/products/:id/privacy',
      {
        config: { auth: { principal: 'consumer', appScope: 'devices:read' } },
        schema: {
          tags: ['my devices'],
          summary: 'What a product senses and collects, and why: read it before claiming (the product ID is on the box or in the QR code)',
          params: IdParams,
          response: { 200: PrivacySchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => privacy.productPrivacy(actorOf(request), request.params.id),
    );

    app.get(
      '/my/devices/:id/privacy',
      {
        config: { auth: { principal: 'consumer', appScope: 'devices:read' } },
        schema: {
          tags: ['my devices'],
          summary: "My device's privacy declaration, the owner's decisions on each purpose, and what is collected now",
          params: IdParams,
          response: { 200: DevicePrivacySchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => privacy.devicePrivacy(actorOf(request), request.params.id),
    );

    app.put(
      '/my/devices/:id/consents',
      {
        config: { auth: { principal: 'consumer', appScope: 'devices:share' } },
        schema: {
          tags: ['my devices'],
          summary: 'Grant or withdraw optional purposes (owner): withdrawing stops storing the telemetry only they covered, at once',
          params: IdParams,
          body: Type.Record(Type.String({ minLength: 1, maxLength: 32 }), Type.Boolean(), { maxProperties: 16 }),
          response: { 200: DevicePrivacySchema, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => privacy.setConsents(actorOf(request), request.params.id, request.body),
    );
  };
}
