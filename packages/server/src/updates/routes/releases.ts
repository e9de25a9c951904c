/**
 * HTTP routes of firmware releases: publish (firmware:release) with the product line's signed
 * metadata, list and read (firmware:read). Releases of another organization are not found.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Strict, Timestamp } from '../../transport/http/schemas.js';
import { MAX_NOTES, type Release, type ReleaseService } from '../releases.js';

const ReleaseView = Strict({
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
});

const view = (release: Release) => ({
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
});

const Id = Type.String({ minLength: 1, maxLength: 64 });
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
          }),
          response: { 201: ReleaseView, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const release = await releases.create(actorOf(request), request.body);
        reply.code(201);
        return view(release);
      },
    );

    app.get(
      '/api/v1/updates/releases',
      {
        config: { auth: { principal: 'operator', permission: 'firmware:read' } },
        schema: {
          tags: ['updates'],
          summary: 'Releases of the organization, newest first',
          querystring: Strict({ productId: Type.Optional(Id) }),
          response: { 200: Strict({ releases: Type.Array(ReleaseView) }), ...errorResponses(400, 401, 403) },
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
          params: Strict({ id: Id }),
          response: { 200: ReleaseView, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => view(await releases.getFor(actorOf(request), request.params.id)),
    );
  };
}
