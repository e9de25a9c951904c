/**
 * The assessment API: run the audit checks on demand, read findings (filters, cursor) and runs,
 * suppress a finding with a reason and an expiry, act on a finding (quarantine, revoke, re-key,
 * notify), and set the organization's signed webhook. Reading needs assessment:read; suppressing
 * and the webhook need org:manage; mitigations need devices:write.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import type { FindingView, RunView } from '@bulwark/protocol';
import { errorResponses, Raw, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { FindingState as State, Severity } from './schemas.js';
import type { MitigationService } from '../mitigations.js';
import type { FindingNotifier } from '../notify.js';
import type { AssessmentService } from '../service.js';
import type { DisclosureService } from '../disclosure.js';
import type { ComplianceService } from '../compliance/report.js';
import { REPORT_CSP, renderComplianceHtml } from '../compliance/html.js';

const Resource = Strict({ type: Type.String(), id: Type.String() });
const NullableTime = Type.Union([Timestamp, Type.Null()]);

const FindingSchema = servesView<FindingView>()(
  Strict({
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
  }),
);

const RunSchema = servesView<RunView>()(
  Strict({
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
  }),
);

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
            cursor: Type.Optional(Type.String({ maxLength: 128, description: 'nextCursor of the previous page' })),
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
            'Mitigate a finding: quarantine its devices, revoke its certificates, re-key its devices (a session needs a recent step-up), or notify the owners and the webhook',
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

const DisclosureStateSchema = Type.Union([
  Type.Literal('received'),
  Type.Literal('triaged'),
  Type.Literal('fixed'),
  Type.Literal('rejected'),
]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const DisclosureSchema = Strict({
  id: Type.String(),
  product: NullableString,
  title: Type.String(),
  description: Type.String(),
  contact: NullableString,
  state: DisclosureStateSchema,
  note: NullableString,
  receivedAt: Timestamp,
  acknowledgeBy: Timestamp,
  resolveBy: Timestamp,
  triagedAt: NullableTime,
  resolvedAt: NullableTime,
  overdue: Type.Boolean({ description: 'past its triage or resolution deadline' }),
});
/** The public intake's bound on a report body (the description's 8000 characters, in UTF-8, and the rest). */
const REPORT_BODY_LIMIT = 48 * 1024;

/**
 * Vulnerability disclosure (ETSI EN 303 645 5.2-1, 5.3-13): security.txt, the public report intake
 * (no sign-in; a strict per-address rate limit), the operators' triage, and the public list of
 * products with the end of their support period.
 */
export function disclosureRoutes({
  disclosures,
  reportsPerHour,
  bodyLimitBytes,
}: {
  disclosures: DisclosureService;
  reportsPerHour: number;
  /** http.bodyLimitBytes: the intake never takes more than the rest of the API. */
  bodyLimitBytes: number;
}) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/.well-known/security.txt',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['disclosure'],
          summary: 'Where to report a vulnerability (RFC 9116)',
          response: { 200: Raw('text/plain; charset=utf-8', 'security.txt') },
        },
      },
      async (_request, reply) => reply.header('content-type', 'text/plain; charset=utf-8').send(disclosures.securityTxt()),
    );

    app.post(
      '/api/v1/disclosures',
      {
        bodyLimit: Math.min(REPORT_BODY_LIMIT, bodyLimitBytes),
        config: { auth: { principal: 'none' }, rateLimit: { max: reportsPerHour, timeWindow: '1 hour' } },
        schema: {
          tags: ['disclosure'],
          summary: 'Report a vulnerability to an organization (no sign-in); answers the same whether the organization exists or not',
          body: Strict({
            organization: Type.String({ minLength: 1, maxLength: 40, description: 'the organization slug' }),
            title: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.String({ minLength: 1, maxLength: 8000 }),
            product: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            contact: Type.Optional(Type.String({ format: 'email', maxLength: 254, description: 'where the acknowledgement goes' })),
          }),
          response: {
            202: Strict({ id: Type.String(), acknowledgeBy: Timestamp, tracking: Type.String() }),
            ...errorResponses(400, 413, 429),
          },
        },
      },
      async (request, reply) => {
        const received = await disclosures.receive(request.body, request.ip);
        return reply.code(202).send({
          ...received,
          tracking: `Keep the report ID ${received.id} and quote it in any follow-up; we aim to triage reports by ${received.acknowledgeBy}.`,
        });
      },
    );

    const read = { auth: { principal: 'operator', permission: 'assessment:read' } } as const;
    app.get(
      '/api/v1/disclosures',
      {
        config: read,
        schema: {
          tags: ['disclosure'],
          summary: 'Vulnerability reports to my organization, newest first',
          querystring: Strict({
            state: Type.Optional(DisclosureStateSchema),
            before: Type.Optional(Type.Integer({ minimum: 0, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          }),
          response: {
            200: Strict({ reports: Type.Array(DisclosureSchema), nextCursor: Type.Union([Type.Integer(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => disclosures.list(actorOf(request), request.query.state, request.query.limit, request.query.before),
    );

    app.get(
      '/api/v1/disclosures/:id',
      {
        config: read,
        schema: { tags: ['disclosure'], params: FindingId, response: { 200: DisclosureSchema, ...errorResponses(400, 401, 403, 404) } },
      },
      async (request) => disclosures.get(actorOf(request), request.params.id),
    );

    app.post(
      '/api/v1/disclosures/:id/state',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['disclosure'],
          summary: 'Move a report on (received → triaged → fixed or rejected) with a note',
          params: FindingId,
          body: Strict({
            state: Type.Union([Type.Literal('triaged'), Type.Literal('fixed'), Type.Literal('rejected')]),
            note: Type.String({ minLength: 1, maxLength: 2000 }),
          }),
          response: { 200: DisclosureSchema, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => disclosures.setState(actorOf(request), request.params.id, request.body.state, request.body.note),
    );

    app.get(
      '/api/v1/public/:organization/products',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['disclosure'],
          summary: "An organization's products and the end of their support period (ETSI EN 303 645 5.3-13); no sign-in",
          params: Strict({ organization: Type.String({ minLength: 1, maxLength: 40 }) }),
          response: {
            200: Strict({ products: Type.Array(Strict({ name: Type.String(), supportUntil: NullableTime })) }),
            ...errorResponses(400),
          },
        },
      },
      async (request) => disclosures.supportPeriods(request.params.organization),
    );
  };
}

const EvidenceItemSchema = Strict({
  kind: Type.String(),
  name: Type.String(),
  value: Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
  ok: Type.Optional(Type.Boolean()),
});
const Outcome = Type.Union([Type.Literal('met'), Type.Literal('attention'), Type.Literal('brand')]);
const OutcomeCounts = Strict({ total: Type.Integer(), met: Type.Integer(), attention: Type.Integer(), brand: Type.Integer() });
const ComplianceReportSchema = Strict({
  standard: Type.String(),
  version: Type.String(),
  generatedAt: Timestamp,
  organization: Strict({ id: Type.String(), slug: Type.String(), name: Type.String() }),
  build: Strict({
    version: Type.String(),
    tests: Type.Union([
      Strict({
        generatedAt: Type.String(),
        commit: Type.Union([Type.String(), Type.Null()]),
        complete: Type.Boolean(),
        passed: Type.Integer(),
        failed: Type.Integer(),
        skipped: Type.Integer(),
      }),
      Type.Null(),
    ]),
  }),
  summary: Strict({ mandatory: OutcomeCounts, recommended: OutcomeCounts }),
  provisions: Type.Array(
    Strict({
      id: Type.String(),
      clause: Type.String(),
      clauseTitle: Type.String(),
      status: Type.Union([Type.Literal('M'), Type.Literal('R')]),
      conditional: Type.Boolean(),
      summary: Type.String(),
      outcome: Outcome,
      platform: Type.Union([Type.String(), Type.Null()]),
      evidence: Type.Array(EvidenceItemSchema),
      brand: Type.String(),
    }),
  ),
  vetting: Type.Array(
    Strict({
      id: Type.String(),
      question: Type.String(),
      outcome: Outcome,
      answer: Type.String(),
      evidence: Type.Array(EvidenceItemSchema),
    }),
  ),
});

/** The ETSI EN 303 645 compliance report, as JSON or as an archivable HTML page (assessment:read, audited). */
export function complianceRoutes({ compliance }: { compliance: ComplianceService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/assessment/compliance/etsi-en-303-645',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary:
            'ETSI EN 303 645 report for my organization: every provision (mandatory first) with the platform status, evidence and what the brand must do, then the vetting questions',
          querystring: Strict({
            format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('html')], { description: 'json (default) or html' })),
          }),
          response: {
            200: {
              description: 'The report: JSON, or with format=html one self-contained page',
              content: {
                'application/json': { schema: ComplianceReportSchema },
                'text/html': { schema: Type.Unsafe<string>({ type: 'string' }) },
              },
            },
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request, reply) => {
        const report = await compliance.report(actorOf(request));
        if (request.query.format !== 'html') return report;
        return reply
          .header('content-type', 'text/html; charset=utf-8')
          .header('content-security-policy', REPORT_CSP)
          .header(
            'content-disposition',
            `inline; filename="etsi-en-303-645-${report.organization.slug}-${report.generatedAt.slice(0, 10)}.html"`,
          )
          .send(renderComplianceHtml(report));
      },
    );
  };
}
