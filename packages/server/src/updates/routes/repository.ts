/**
 * HTTP routes of the TUF image repository. Operators (session or API key): the repository's status
 * and online keys (firmware:read), root and top-level targets uploads and online key rotation
 * (org:manage: owners and admins; starting or cancelling a rotation also needs a recent step-up). Public, no authentication (every file is signed): the metadata devices refresh from,
 * under /tuf/<organizationId>/metadata/.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { NotFoundError } from '../../errors.js';
import type { TufRepository } from '../repository.js';
import type { OnlineKeyRotation } from '../online-keys.js';
import { ONLINE_ROLES } from '../tuf/online-rotation.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Raw, Strict } from '../../transport/http/schemas.js';
import { onlineKeysJson } from '../tuf/offline.js';

const RoleStatus = Strict({
  role: Type.String(),
  version: Type.Integer(),
  expires: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
const Status = Strict({
  organizationId: Type.String(),
  ready: Type.Boolean({ description: 'root, targets, snapshot and timestamp are in place' }),
  roles: Type.Array(RoleStatus),
  directorRoot: Type.Union([RoleStatus, Type.Null()]),
});
const PublicKey = Strict({
  keyid: Type.String(),
  keytype: Type.String(),
  scheme: Type.String(),
  keyval: Strict({ public: Type.String() }),
});
const OnlineKeys = Strict({ organizationId: Type.String(), snapshot: PublicKey, timestamp: PublicKey, director: PublicKey });
const RotationPlan = Strict({
  organizationId: Type.String(),
  roles: Type.Array(Type.String()),
  pending: Type.Record(Type.String(), PublicKey, { description: 'the staged keys, by role' }),
  current: OnlineKeys,
  root: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
    description: 'the next image repository root, unsigned: sign it with `bulwark firmware root sign`',
  }),
  directorRoot: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
    description: 'the next director root, unsigned',
  }),
});
const Expiry = Type.Integer({ minimum: 1, maximum: 3650, description: 'days until the new roots expire (365)' });
/** Signed metadata is checked by the repository itself (tuf/verify.ts), not by the edge schema. */
const SignedMetadata = Type.Object({}, { additionalProperties: true, description: 'signed TUF metadata: { signed, signatures }' });

export function repositoryRoutes({ repository, onlineKeys }: { repository: TufRepository; onlineKeys: OnlineKeyRotation }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const read = { auth: { principal: 'operator', permission: 'firmware:read' } } as const;
    const manage = { auth: { principal: 'operator', permission: 'org:manage' } } as const;

    app.get(
      '/api/v1/updates/repository',
      {
        config: read,
        schema: {
          tags: ['updates'],
          summary: "The image repository's roles: current versions and expiries",
          response: { 200: Status, ...errorResponses(401, 403) },
        },
      },
      async (request) => repository.status(actorOf(request)),
    );

    app.get(
      '/api/v1/updates/repository/online-keys',
      {
        config: read,
        schema: {
          tags: ['updates'],
          summary:
            'Public halves of the online snapshot, timestamp and director keys (created on first use), for `bulwark firmware root create --online`',
          response: { 200: OnlineKeys, ...errorResponses(401, 403) },
        },
      },
      async (request) => onlineKeysJson(await repository.onlineKeysFor(actorOf(request))) as never,
    );

    app.post(
      '/api/v1/updates/repository/online-keys/rotate',
      {
        config: manage,
        schema: {
          tags: ['updates'],
          summary:
            'Start an online key rotation: stage new snapshot, timestamp and/or director keys and answer the unsigned next root(s) naming them, to sign offline and upload (needs a recent step-up)',
          body: Strict({
            roles: Type.Optional(Type.Array(Type.Union(ONLINE_ROLES.map((r) => Type.Literal(r))), { minItems: 1, maxItems: 3 })),
            expiresDays: Type.Optional(Expiry),
          }),
          response: { 200: RotationPlan, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request) => onlineKeys.start(actorOf(request), request.body.roles, request.body.expiresDays) as never,
    );

    app.get(
      '/api/v1/updates/repository/online-keys/rotation',
      {
        config: manage,
        schema: {
          tags: ['updates'],
          summary: 'The pending online key rotation: its staged keys and the unsigned next root(s), built from the current roots',
          querystring: Strict({ expiresDays: Type.Optional(Expiry) }),
          response: { 200: RotationPlan, ...errorResponses(401, 403, 409) },
        },
      },
      async (request) => onlineKeys.plan(actorOf(request), request.query.expiresDays) as never,
    );

    app.delete(
      '/api/v1/updates/repository/online-keys/rotation',
      {
        config: manage,
        schema: {
          tags: ['updates'],
          summary: 'Cancel the pending online key rotation: its staged keys are retired and never used (needs a recent step-up)',
          response: {
            200: Strict({ organizationId: Type.String(), cancelled: Type.Array(Type.String()) }),
            ...errorResponses(401, 403, 409),
          },
        },
      },
      async (request) => onlineKeys.cancel(actorOf(request)),
    );

    app.post(
      '/api/v1/updates/repository/root',
      {
        config: manage,
        schema: {
          tags: ['updates'],
          summary:
            'Upload a new image repository root (first, or the next version signed by the previous and new root keys) and/or director root',
          body: Strict({ root: Type.Optional(SignedMetadata), directorRoot: Type.Optional(SignedMetadata) }),
          response: { 200: Status, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request) => repository.acceptRoot(actorOf(request), request.body),
    );

    app.post(
      '/api/v1/updates/repository/targets',
      {
        config: manage,
        schema: {
          tags: ['updates'],
          summary: "Upload new top-level targets (the product lines' delegations), signed by the root's targets keys",
          body: SignedMetadata,
          response: { 200: Status, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request) => repository.acceptTargets(actorOf(request), request.body),
    );

    app.get(
      '/tuf/:organizationId/metadata/:file',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['updates'],
          summary:
            'Signed TUF metadata of the image repository: <version>.root.json, root.json, timestamp.json, <version>.snapshot.json, <version>.targets.json, <version>.product-<productId>.json',
          params: Strict({
            organizationId: Type.String({ minLength: 1, maxLength: 64 }),
            file: Type.String({ minLength: 1, maxLength: 200 }),
          }),
          response: { 200: Raw('application/json', 'The signed metadata, byte for byte as signed') },
        },
      },
      async (request, reply) => {
        const file = await repository.metadataFile(request.params.organizationId, request.params.file);
        if (!file) throw new NotFoundError(`Metadata file ${request.params.file}`);
        // Versioned files never change; root.json and timestamp.json move with every change.
        reply
          .header('content-type', 'application/json; charset=utf-8')
          .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-store');
        return file.json;
      },
    );
  };
}
