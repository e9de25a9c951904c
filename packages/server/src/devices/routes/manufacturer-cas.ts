/**
 * Just-in-time provisioning's operator doors under /api/v1: manufacturer CAs
 * (`/pki/manufacturer-cas`: a challenge, registration with its signature, listing, revocation) and
 * the allow-lists of products and enrollment groups (`/products/:id/enrollment-policy`,
 * `/enrollment-groups/:id/enrollment-policy`, and their imported serial lists). Reading needs
 * devices:read, changing devices:write; registering and revoking a CA also a fresh step-up.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, Strict, Timestamp } from '../../transport/http/schemas.js';
import type { EnrollmentScope } from '../../storage/schema.js';
import { MAX_CIDRS, MAX_DAILY_QUOTA, MAX_PATTERNS, type EnrollmentPolicyService } from '../enrollment-policy.js';
import type { ManufacturerCaService } from '../manufacturer-cas.js';

/** Serials one request may import (the CLI sends a larger file in several). */
export const SERIALS_PER_REQUEST = 10_000;

const DeviceIdFrom = Type.Union([Type.Literal('cn'), Type.Literal('serial_number'), Type.Literal('key_sha256')]);
const Activation = Type.Union([Type.Literal('active'), Type.Literal('pending')]);

const ManufacturerCa = Strict({
  id: Type.String(),
  name: Type.String(),
  productId: Type.String(),
  subject: Type.String(),
  fingerprintSha256: Type.String(),
  deviceIdFrom: DeviceIdFrom,
  deviceIdPrefix: Type.String(),
  activation: Activation,
  notAfter: Timestamp,
  createdAt: Timestamp,
  revokedAt: Type.Union([Timestamp, Type.Null()]),
});

const Policy = Strict({
  scope: Type.Union([Type.Literal('product'), Type.Literal('enrollment_group')]),
  scopeId: Type.String(),
  serialPatterns: Type.Array(Type.String()),
  sourceCidrs: Type.Array(Type.String()),
  dailyQuota: Type.Integer(),
  dailyQuotaSet: Type.Boolean(),
  serialList: Type.Boolean(),
  serialsListed: Type.Integer(),
  registrationsToday: Type.Integer(),
});

export interface ManufacturerCaRouteDeps {
  manufacturerCas: ManufacturerCaService;
  enrollmentPolicies: EnrollmentPolicyService;
}

export function manufacturerCaRoutes({ manufacturerCas: cas, enrollmentPolicies: policies }: ManufacturerCaRouteDeps) {
  return async function register(scope: FastifyInstance): Promise<void> {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>();
    const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
    app.post(
      '/pki/manufacturer-cas/challenge',
      {
        config: write,
        schema: {
          tags: ['pki'],
          summary: 'A single-use challenge (10 minutes) to sign with the manufacturer CA key: the proof of possession registration needs',
          response: { 201: Strict({ challenge: Type.String(), expiresAt: Timestamp }), ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => {
        const created = await cas.challenge(actorOf(request));
        return reply.status(201).send({ challenge: created.challenge, expiresAt: created.expiresAt.toISOString() });
      },
    );
    app.post(
      '/pki/manufacturer-cas',
      {
        config: write,
        schema: {
          tags: ['pki'],
          summary:
            "Trust a manufacturer CA for a product's just-in-time provisioning; needs the challenge signed with the CA key and a fresh step-up",
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            productId: Id,
            certificate: Type.String({ minLength: 1, maxLength: 16_384, description: 'The CA certificate (PEM)' }),
            challenge: Type.String({ minLength: 1, maxLength: 200 }),
            signature: Type.String({
              minLength: 1,
              maxLength: 4096,
              description: "The challenge's bytes signed with the CA key (SHA-256), base64",
            }),
            deviceIdFrom: Type.Optional(DeviceIdFrom),
            deviceIdPrefix: Type.Optional(Type.String({ maxLength: 32 })),
            activation: Type.Optional(Activation),
          }),
          response: { 201: ManufacturerCa, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await cas.register(actorOf(request), request.body)),
    );
    app.get(
      '/pki/manufacturer-cas',
      {
        config: read,
        schema: {
          tags: ['pki'],
          summary: 'The manufacturer CAs of the organization (revoked ones too), with the devices each registered',
          response: {
            200: Strict({ manufacturerCas: Type.Array(Strict({ ...ManufacturerCa.properties, devicesRegistered: Type.Integer() })) }),
            ...errorResponses(401, 403),
          },
        },
      },
      async (request) => ({ manufacturerCas: await cas.list(actorOf(request)) }),
    );
    app.post(
      '/pki/manufacturer-cas/:id/revoke',
      {
        config: write,
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          tags: ['pki'],
          summary: 'Stop registrations through a manufacturer CA; with quarantine, quarantine every active device it registered',
          params: IdParams,
          body: Strict({ quarantine: Type.Optional(Type.Boolean()) }),
          response: { 200: Strict({ quarantined: Type.Integer() }), ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => ({
        quarantined: (await cas.revoke(actorOf(request), request.params.id, { quarantine: request.body.quarantine === true })).quarantined
          .length,
      }),
    );

    for (const [path, scopeName] of [
      ['products', 'product'],
      ['enrollment-groups', 'enrollment_group'],
    ] as const satisfies readonly (readonly [string, EnrollmentScope])[]) {
      const what = scopeName === 'product' ? "a product's manufacturer CAs" : "an enrollment group's";
      app.get(
        `/${path}/:id/enrollment-policy`,
        {
          config: read,
          schema: {
            tags: ['devices'],
            summary: `The allow-list on registrations through ${what}, with today's count`,
            params: IdParams,
            response: { 200: Policy, ...errorResponses(401, 403, 404) },
          },
        },
        async (request) => policies.get(actorOf(request), scopeName, request.params.id),
      );
      app.put(
        `/${path}/:id/enrollment-policy`,
        {
          config: write,
          schema: {
            tags: ['devices'],
            summary: `Set the allow-list on registrations through ${what} (fields left out keep their value)`,
            params: IdParams,
            body: Strict({
              serialPatterns: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: MAX_PATTERNS })),
              sourceCidrs: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: MAX_CIDRS })),
              dailyQuota: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: MAX_DAILY_QUOTA }), Type.Null()])),
              serialList: Type.Optional(Type.Boolean()),
            }),
            response: { 200: Policy, ...errorResponses(400, 401, 403, 404) },
          },
        },
        async (request) => policies.set(actorOf(request), scopeName, request.params.id, request.body),
      );
      app.post(
        `/${path}/:id/enrollment-policy/serials`,
        {
          config: write,
          schema: {
            tags: ['devices'],
            summary: `Import serials into the allow-list of ${what} (and make the list part of it); replace drops those listed before`,
            params: IdParams,
            body: Strict({
              serials: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: SERIALS_PER_REQUEST }),
              replace: Type.Optional(Type.Boolean()),
            }),
            response: { 200: Policy, ...errorResponses(400, 401, 403, 404) },
          },
        },
        async (request) =>
          policies.importSerials(actorOf(request), scopeName, request.params.id, request.body.serials, request.body.replace === true),
      );
    }
  };
}
