/**
 * HTTP routes of firmware releases: publish (firmware:release) with the product line's signed
 * metadata and attestations, list and read (firmware:read), the refusals of the products'
 * release policies, and each product's policy (read: firmware:read; set: org:manage). Releases of
 * another organization are not found.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ReleaseView } from '@bulwark/protocol';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { MAX_ATTESTATIONS, MAX_POLICY_ENTRIES, MAX_POLICY_KEYS, type ReleasePolicy } from '../provenance.js';
import { MAX_NOTES, type Release, type ReleaseRefusal, type ReleaseService } from '../releases.js';

const ReleaseSchema = servesView<ReleaseView>()(
  Strict({
    id: Type.String(),
    productId: Type.String(),
    version: Type.String(),
    securityVersion: Type.Integer(),
    hardwareIds: Type.Array(Type.String()),
    targetName: Type.String(),
    sha256: Type.String(),
    length: Type.Integer(),
    notes: Type.String(),
    createdAt: Timestamp,
    provenance: Type.Union([
      Strict(
        {
          builder: Type.Union([Type.String(), Type.Null()]),
          repository: Type.Union([Type.String(), Type.Null()]),
          commit: Type.Union([Type.String(), Type.Null()]),
          tests: Type.Union([
            Strict({ result: Type.String(), passed: Type.Integer(), warned: Type.Integer(), configuration: Type.Array(Type.String()) }),
            Type.Null(),
          ]),
          signedBy: Type.Array(Type.String()),
        },
        { description: "what the release's attestations showed, verified against its product's release policy" },
      ),
      Type.Null(),
    ]),
  }),
);

const Policy = Strict({
  attestationKeys: Type.Array(
    Strict({
      keyid: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the DER SubjectPublicKeyInfo, hex' }),
      publicKey: Type.String({ maxLength: 4096, description: 'SPKI PEM, Ed25519 or ECDSA P-256' }),
    }),
    { maxItems: MAX_POLICY_KEYS },
  ),
  builders: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: MAX_POLICY_ENTRIES }),
  repositories: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: MAX_POLICY_ENTRIES }),
  requireProvenance: Type.Boolean(),
  requireTests: Type.Boolean(),
});

const Refusal = Strict({
  id: Type.String(),
  productId: Type.String(),
  version: Type.String(),
  sha256: Type.String(),
  code: Type.String(),
  reason: Type.String(),
  createdAt: Timestamp,
});
const refusalView = (r: ReleaseRefusal) => ({ ...r, createdAt: new Date(r.createdAt).toISOString() });

const view = (release: Release): ReleaseView => ({
  id: release.id,
  productId: release.productId,
  version: release.version,
  securityVersion: release.securityVersion,
  hardwareIds: release.hardwareIds,
  targetName: release.targetName,
  sha256: release.sha256,
  length: release.length,
  notes: release.notes,
  createdAt: new Date(release.createdAt).toISOString(),
  provenance: release.provenance,
});

/** Checked by the services (CycloneDX validation, TUF verification), not by the edge schema. */
const OpenObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

export function releaseRoutes({ releases }: { releases: ReleaseService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/api/v1/updates/releases',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:release' } },
        schema: {
          tags: ['updates'],
          summary:
            "Publish a release: the product line's new signed metadata naming <productId>/firmware-<version>.bin, an uploaded image, an SBOM",
          body: Strict({
            productId: Id,
            version: Type.String({ minLength: 1, maxLength: 64, description: 'semantic version, as signed in the target' }),
            notes: Type.String({ maxLength: MAX_NOTES }),
            sbom: OpenObject('CycloneDX JSON SBOM of the image'),
            metadata: OpenObject("the product line's new signed delegated targets metadata (bulwark firmware sign)"),
            attestations: Type.Optional(
              Type.Array(OpenObject('a DSSE envelope of an in-toto statement about the image (SLSA provenance v1, test result v0.1)'), {
                maxItems: MAX_ATTESTATIONS,
              }),
            ),
          }),
          response: { 201: ReleaseSchema, ...errorResponses(400, 401, 403, 404, 409, 422) },
        },
      },
      async (request, reply) => {
        const release = await releases.create(actorOf(request), request.body);
        reply.code(201);
        return view(release);
      },
    );

    app.get(
      '/api/v1/updates/release-refusals',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: "Releases a product's release policy refused, with the reason, newest first (at most 500)",
          querystring: Strict({ productId: Type.Optional(Id) }),
          response: { 200: Strict({ refusals: Type.Array(Refusal) }), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => ({ refusals: (await releases.refusals(actorOf(request), request.query)).map(refusalView) }),
    );

    app.get(
      '/api/v1/updates/products/:id/release-policy',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: "A product's release policy: attestation keys, accepted builders and source repositories, what is required",
          params: IdParams,
          response: { 200: Strict({ policy: Type.Union([Policy, Type.Null()]) }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => ({ policy: await releases.policy(actorOf(request), request.params.id) }),
    );

    app.put(
      '/api/v1/updates/products/:id/release-policy',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['updates'],
          summary: "Set a product's release policy (owners and admins: a release key cannot weaken the gate it must pass); audited",
          params: IdParams,
          body: Strict({
            attestationKeys: Type.Optional(Policy.properties.attestationKeys),
            builders: Type.Optional(Policy.properties.builders),
            repositories: Type.Optional(Policy.properties.repositories),
            requireProvenance: Type.Optional(Type.Boolean()),
            requireTests: Type.Optional(Type.Boolean()),
          }),
          response: { 200: Strict({ policy: Policy }), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => ({ policy: (await releases.setPolicy(actorOf(request), request.params.id, request.body)) as ReleasePolicy }),
    );

    app.get(
      '/api/v1/updates/releases',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: 'Releases of the organization, newest first',
          querystring: Strict({ productId: Type.Optional(Id) }),
          response: { 200: Strict({ releases: Type.Array(ReleaseSchema) }), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => ({ releases: (await releases.list(actorOf(request), request.query)).map(view) }),
    );

    app.get(
      '/api/v1/updates/releases/:id',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: 'One release',
          params: IdParams,
          response: { 200: ReleaseSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => view(await releases.getFor(actorOf(request), request.params.id)),
    );

    app.get(
      '/api/v1/updates/releases/:id/sbom',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: 'The CycloneDX JSON SBOM published with the release, as stored',
          params: IdParams,
          response: { 200: OpenObject('CycloneDX JSON SBOM of the image'), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => releases.sbom(actorOf(request), request.params.id),
    );
  };
}
