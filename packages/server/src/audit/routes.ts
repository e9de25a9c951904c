/**
 * The audit API: query my organization's entries with filters and cursor pagination, and
 * export them as JSON lines. Verification of the whole chain is the platform admin's
 * (`bulwark audit verify`), since the chain spans every organization.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { requirePermission } from '../accounts/roles.js';
import type { AuditService } from './service.js';
import { actorOf } from '../accounts/routes/authentication.js';
import { errorResponses, Raw, Strict, Timestamp } from '../transport/http/schemas.js';

const EntrySchema = Strict({
  seq: Type.Integer(),
  ts: Timestamp,
  organizationId: Type.Union([Type.String(), Type.Null()]),
  actor: Strict({ type: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  action: Type.String(),
  target: Strict({ type: Type.Union([Type.String(), Type.Null()]), id: Type.Union([Type.String(), Type.Null()]) }),
  sourceIp: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  hash: Type.String(),
});

export function auditRoutes({ audit }: { audit: AuditService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/audit',
      {
        config: { auth: { principal: 'operator', permission: 'audit:read' } },
        schema: {
          tags: ['audit'],
          summary: "My organization's audit entries, newest first",
          querystring: Strict({
            action: Type.Optional(Type.String({ maxLength: 100 })),
            actorId: Type.Optional(Type.String({ maxLength: 100 })),
            targetId: Type.Optional(Type.String({ maxLength: 100 })),
            outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')])),
            since: Type.Optional(Type.String({ format: 'date-time' })),
            until: Type.Optional(Type.String({ format: 'date-time' })),
            before: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          }),
          response: {
            200: Strict({ entries: Type.Array(EntrySchema), nextCursor: Type.Union([Type.Integer(), Type.Null()]) }),
            ...errorResponses(400, 401, 403),
          },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        requirePermission(actor, 'audit:read');
        const { since, until, ...rest } = request.query;
        return audit.query({
          ...rest,
          organizationId: actor.organizationId,
          ...(since ? { since: Date.parse(since) } : {}),
          ...(until ? { until: Date.parse(until) } : {}),
        });
      },
    );

    app.get(
      '/audit/export',
      {
        config: { auth: { principal: 'operator', permission: 'audit:read' } },
        schema: {
          tags: ['audit'],
          summary: "All of my organization's audit entries as JSON lines, oldest first",
          response: { 200: Raw('application/x-ndjson', 'One audit entry per line, oldest first'), ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        requirePermission(actor, 'audit:read');
        reply.header('content-type', 'application/x-ndjson');
        reply.header('content-disposition', 'attachment; filename="audit.jsonl"');
        return reply.send(Readable.from(audit.export(actor.organizationId)));
      },
    );
  };
}
