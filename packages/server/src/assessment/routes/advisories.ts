/**
 * The advisories API: import OSV records (in the body, or from an https URL the deployment
 * fetches; org:manage), list them matched against the releases' SBOMs with the devices exposed,
 * read one with its record (assessment:read), read the exposure per advisory per day for charts,
 * and start a remediation rollout to a fixed release (rollouts:manage).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Strict, Timestamp } from '../../transport/http/schemas.js';
import { Severity } from './schemas.js';
import { MAX_RECORDS_PER_IMPORT, type AdvisoryService } from '../advisories/service.js';

const AdvisoryId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', description: 'the OSV ID' });

const AffectedRelease = Strict({
  releaseId: Type.String(),
  productId: Type.String(),
  version: Type.String(),
  components: Type.Array(Strict({ name: Type.String(), purl: Type.String(), version: Type.String() })),
  devices: Type.Integer({ description: 'devices reporting this version of the product' }),
});

const advisoryFields = {
  id: Type.String(),
  modified: Type.String(),
  summary: Type.String(),
  aliases: Type.Array(Type.String()),
  severity: Severity,
  severitySource: Type.String({ description: 'CVSS_V3 <score>, database_specific or default' }),
  importedAt: Timestamp,
  affectedReleases: Type.Array(AffectedRelease),
  devices: Type.Integer({ description: 'devices running an affected release' }),
};
const Advisory = Strict(advisoryFields);
const ImportResult = Strict({ added: Type.Array(Type.String()), updated: Type.Array(Type.String()), unchanged: Type.Array(Type.String()) });

export function advisoryRoutes({ advisories }: { advisories: AdvisoryService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/assessment/advisories',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['assessment'],
          summary:
            'Import OSV advisories: the records in the body, or those at an https URL (private addresses refused by default); audited',
          body: Type.Union([
            Strict({
              records: Type.Array(Type.Object({}, { additionalProperties: true, description: 'an OSV record' }), {
                minItems: 1,
                maxItems: MAX_RECORDS_PER_IMPORT,
              }),
            }),
            Strict({ url: Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' }) }),
          ]),
          response: { 200: ImportResult, ...errorResponses(400, 401, 403, 502) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const body = request.body;
        return 'url' in body ? advisories.importUrl(actor, body.url) : advisories.import(actor, body.records, 'api');
      },
    );

    app.get(
      '/assessment/advisories',
      {
        config: { auth: { principal: 'operator', permission: 'assessment:read' } },
        schema: {
          tags: ['assessment'],
          summary:
            "The organization's advisories matched against every release's SBOM, with the releases affected and the devices running them",
          response: { 200: Strict({ advisories: Type.Array(Advisory) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ advisories: await advisories.list(actorOf(request)) }),
    );

    app.get(
      '/assessment/advisories/:id',
      {
        config: { auth: { principal: 'operator', permission: 'assessment:read' } },
        schema: {
          tags: ['assessment'],
          summary: 'One advisory with its OSV record, the releases it affects and the devices running them',
          params: Strict({ id: AdvisoryId }),
          response: {
            200: Strict({ ...advisoryFields, record: Type.Record(Type.String(), Type.Unknown()) }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (request) => advisories.get(actorOf(request), request.params.id),
    );

    app.get(
      '/assessment/exposure',
      {
        config: { auth: { principal: 'operator', permission: 'assessment:read' } },
        schema: {
          tags: ['assessment'],
          summary: 'Devices exposed per advisory per day (UTC), as the assessment runs recorded them, oldest day first',
          querystring: Strict({
            advisoryId: Type.Optional(AdvisoryId),
            days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, description: 'days back from today (default 30)' })),
          }),
          response: {
            200: Strict({
              series: Type.Array(
                Strict({ day: Type.String(), advisoryId: Type.String(), devices: Type.Integer(), releases: Type.Integer() }),
              ),
            }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (request) => ({ series: await advisories.exposure(actorOf(request), request.query) }),
    );

    app.post(
      '/assessment/advisories/:id/remediation',
      {
        config: { auth: { principal: 'operator', permission: 'rollouts:manage' } },
        schema: {
          tags: ['assessment'],
          summary: 'Start a rollout of a fixed release to every device of its product running a release the advisory affects; audited',
          params: Strict({ id: AdvisoryId }),
          body: Strict({
            releaseId: Type.String({ minLength: 1, maxLength: 64 }),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            phases: Type.Optional(
              Type.Array(
                Strict({ percent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }), soakSeconds: Type.Integer({ minimum: 0 }) }),
                {
                  minItems: 1,
                  maxItems: 20,
                },
              ),
            ),
          }),
          response: {
            201: Strict({
              rolloutId: Type.String(),
              releaseId: Type.String(),
              enrolled: Type.Integer(),
              skipped: Type.Integer(),
              affectedVersions: Type.Array(Type.String()),
            }),
            ...errorResponses(400, 401, 403, 404, 409, 422),
          },
        },
      },
      async (request, reply) => {
        const { rollout, affectedVersions } = await advisories.remediate(actorOf(request), request.params.id, request.body);
        reply.code(201);
        return {
          rolloutId: rollout.id,
          releaseId: rollout.releaseId,
          enrolled: rollout.enrolled,
          skipped: rollout.skipped,
          affectedVersions,
        };
      },
    );
  };
}
