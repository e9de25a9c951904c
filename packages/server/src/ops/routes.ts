/**
 * Operations endpoints: liveness (/healthz), readiness (/readyz: the database, and the broker and
 * Redis once the runner added them; ops/readiness.ts),
 * Prometheus metrics for the holder of the scrape token (/metrics) and the OpenAPI document
 * (/api/openapi.json).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ErrorCodes } from '@bulwark/protocol';
import { AuthenticationError, BulwarkError } from '../errors.js';
import { errorResponses, Raw, Strict } from '../transport/http/schemas.js';
import type { Metrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { isScrapeAuthorized } from './scrape-token.js';

export interface OpsRouteDeps {
  /** What readiness checks: the database, and what the runner adds (broker, Redis). */
  readiness: Readiness;
  metrics: Metrics;
  /** config.metrics.tokenHash: the scrape token's digest, if /metrics needs one. */
  metricsTokenHash: string | undefined;
}

export function opsRoutes({ readiness, metrics, metricsTokenHash: tokenHash }: OpsRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const none = { auth: { principal: 'none' as const }, rateLimit: false as const };
    app.get(
      '/healthz',
      { config: none, schema: { tags: ['ops'], response: { 200: Strict({ status: Type.Literal('ok') }) } } },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        config: none,
        schema: {
          tags: ['ops'],
          response: {
            200: Strict({ status: Type.Literal('ready'), checks: Type.Record(Type.String(), Type.Boolean()) }),
            503: Strict({ status: Type.Literal('unavailable'), checks: Type.Record(Type.String(), Type.Boolean()) }),
          },
        },
      },
      async (_request, reply) => {
        const { ready, checks } = await readiness.evaluate();
        return ready ? { status: 'ready' as const, checks } : reply.status(503).send({ status: 'unavailable' as const, checks });
      },
    );

    // Outside the session/API-key door (a scraper is no user) but behind its own bearer token.
    app.get(
      '/metrics',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['ops'],
          summary:
            'Prometheus metrics, for the holder of the scrape token (Authorization: Bearer; see bulwark admin metrics-token): the whole node (every worker summed), or ?scope=worker for the process that answered',
          querystring: Strict({ scope: Type.Optional(Type.Union([Type.Literal('node'), Type.Literal('worker')])) }),
          response: { 200: Raw('text/plain; version=0.0.4', 'Prometheus text exposition'), ...errorResponses(401, 503) },
        },
      },
      async (request, reply) => {
        if (!isScrapeAuthorized(request.headers.authorization, tokenHash)) {
          throw new AuthenticationError(
            tokenHash
              ? 'Send the scrape token: Authorization: Bearer <token>'
              : 'No scrape token is configured: create one with `bulwark admin metrics-token`, then send it as a bearer token',
          );
        }
        const { scope } = request.query as { scope?: 'node' | 'worker' };
        reply.header('content-type', metrics.registry.contentType);
        return metrics.exposition(scope === 'worker' ? 'process' : 'node').catch((error: Error) => {
          // A worker just restarting has not answered the primary yet: say so, rather than a partial sum.
          throw new BulwarkError(ErrorCodes.serviceUnavailable, `${error.message}; retry, or ask one worker with ?scope=worker`, 503);
        });
      },
    );

    app.get(
      '/api/openapi.json',
      {
        config: none,
        schema: {
          tags: ['ops'],
          summary: 'This OpenAPI 3.1 document',
          response: { 200: Type.Unknown({ description: 'The OpenAPI document' }) },
        },
      },
      async () => app.swagger(),
    );
  };
}
