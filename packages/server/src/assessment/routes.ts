/**
 * The assessment API: run the audit checks on demand, read findings (filters, cursor) and runs,
 * suppress a finding with a reason and an expiry, act on a finding (quarantine, revoke, re-key,
 * notify), and set the organization's signed webhook. Reading needs assessment:read; suppressing
 * and the webhook need org:manage; mitigations need devices:write.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../accounts/routes/authentication.js';
import { errorResponses, Strict, Timestamp } from '../transport/http/schemas.js';
import type { MitigationService } from './mitigations.js';
import type { FindingNotifier } from './notify.js';
import type { AssessmentService } from './service.js';

const Severity = Type.Union([
  Type.Literal('critical'),
  Type.Literal('high'),
  Type.Literal('medium'),
  Type.Literal('low'),
  Type.Literal('info'),
]);
const State = Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('suppressed')]);
const Resource = Strict({ type: Type.String(), id: Type.String() });
const NullableTime = Type.Union([Timestamp, Type.Null()]);

const FindingSchema = Strict({
  id: Type.String(),
  organizationId: Type.String(),
  check: Type.String(),
  subject: Type.String(),
  source: Type.String(),
  severity: Severity,
  title: Type.String(),
  evidence: Type.Record(Type.String(), Type.Unknown()),
  resources: Type.Array(Resource),
  moreResources: Type.Integer({ description: 'affected resources beyond those listed' }),
  state: State,
  firstSeenAt: Timestamp,
  lastSeenAt: Timestamp,
  resolvedAt: NullableTime,
  suppression: Type.Union([Strict({ reason: Type.String(), by: Type.String(), at: Timestamp, until: Timestamp }), Type.Null()]),
});

const RunSchema = Strict({
  id: Type.String(),
  organizationId: Type.String(),
  trigger: Type.String(),
  startedAt: Timestamp,
  durationMs: Type.Integer(),
  checks: Type.Array(Type.String()),
  opened: Type.Integer(),
  resolved: Type.Integer(),
  openTotal: Type.Integer(),
  failures: Type.Array(Strict({ check: Type.String(), message: Type.String() })),
});

const FindingId = Strict({ id: Type.String({ format: 'uuid' }) });
const read = { auth: { principal: 'operator', permission: 'assessment:read' } } as const;

export function assessmentRoutes({
  assessment,
  mitigations,
  notifier,
}: {
  assessment: AssessmentService;
  mitigations: MitigationService;
  notifier: FindingNotifier;
}) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/assessment/checks',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: 'The audit checks a run evaluates, with their default severity and rationale',
          response: {
            200: Strict({
              checks: Type.Array(Strict({ id: Type.String(), severity: Severity, title: Type.String(), rationale: Type.String() })),
            }),
            ...errorResponses(401, 403),
          },
        },
      },
      async () => ({ checks: assessment.catalogue() }),
    );

    app.post(
      '/assessment/runs',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: 'Run every audit check over my organization now; opens, refreshes and resolves findings',
          response: { 201: RunSchema, ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => reply.code(201).send(await assessment.run(actorOf(request), 'api')),
    );

    app.get(
      '/assessment/runs',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: 'Check runs, newest first',
          querystring: Strict({
            before: Type.Optional(Type.Integer({ minimum: 0, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          }),
          response: {
            200: Strict({ runs: Type.Array(RunSchema), nextCursor: Type.Union([Type.Integer(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => assessment.runs(actorOf(request), request.query.limit, request.query.before),
    );

    app.get(
      '/assessment/findings',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: 'Findings of my organization, filtered, cursor-paginated',
          querystring: Strict({
            state: Type.Optional(State),
            severity: Type.Optional(Severity),
            check: Type.Optional(Type.String({ maxLength: 100 })),
            cursor: Type.Optional(Type.String({ maxLength: 64, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          }),
          response: {
            200: Strict({ findings: Type.Array(FindingSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => assessment.list(actorOf(request), request.query),
    );

    app.get(
      '/assessment/findings/:id',
      {
        config: read,
        schema: { tags: ['assessment'], params: FindingId, response: { 200: FindingSchema, ...errorResponses(400, 401, 403, 404) } },
      },
      async (request) => assessment.get(actorOf(request), request.params.id),
    );

    app.post(
      '/assessment/findings/:id/suppress',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['assessment'],
          summary: 'Accept the risk of a finding until a date, with the reason on record',
          params: FindingId,
          body: Strict({ reason: Type.String({ minLength: 1, maxLength: 500 }), until: Timestamp }),
          response: { 200: FindingSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => assessment.suppress(actorOf(request), request.params.id, request.body.reason, Date.parse(request.body.until)),
    );

    app.post(
      '/assessment/findings/:id/actions',
      {
        config: { auth: { principal: 'operator', permission: 'devices:write' } },
        schema: {
          tags: ['assessment'],
          summary:
            'Mitigate a finding: quarantine its devices, revoke its certificates, re-key its devices, or notify the owners and the webhook',
          params: FindingId,
          body: Strict({
            action: Type.Union([Type.Literal('quarantine'), Type.Literal('revoke'), Type.Literal('rekey'), Type.Literal('notify')]),
          }),
          response: {
            200: Strict({
              findingId: Type.String(),
              action: Type.String(),
              results: Type.Array(
                Strict({
                  resource: Resource,
                  outcome: Type.String(),
                  code: Type.Optional(Type.String()),
                  message: Type.Optional(Type.String()),
                  enrollmentToken: Type.Optional(Type.String()),
                }),
              ),
              notified: Type.Optional(
                Strict({
                  mailedTo: Type.Integer(),
                  webhook: Type.Union([Strict({ url: Type.String(), status: Type.Integer() }), Type.Null()]),
                }),
              ),
            }),
            ...errorResponses(400, 401, 403, 404, 409, 502),
          },
        },
      },
      async (request) => mitigations.act(actorOf(request), request.params.id, request.body.action),
    );

    app.put(
      '/assessment/webhook',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['assessment'],
          summary: "Set (or with null remove) my organization's finding webhook; answers its HMAC-SHA256 secret once",
          body: Strict({ url: Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()]) }),
          response: {
            200: Strict({ url: Type.Union([Type.String(), Type.Null()]), secret: Type.Union([Type.String(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => notifier.setWebhook(actorOf(request), request.body.url),
    );
  };
}
