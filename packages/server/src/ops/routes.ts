/**
 * Operations endpoints: liveness (/healthz), readiness with the database check (/readyz),
 * Prometheus metrics (/metrics) and the OpenAPI document (/api/openapi.json).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { isReachable } from '../storage/database.js';
import type { Platform } from '../platform.js';
import { Strict } from '../transport/http/schemas.js';

export function opsRoutes(platform: Platform) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'bulwark_' });
    const duration = new Histogram({
      name: 'bulwark_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    app.addHook('onResponse', async (request, reply) => {
      duration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });

    const none = { auth: { principal: 'none' as const }, rateLimit: false as const };
    app.get('/healthz', { config: none, schema: { tags: ['ops'], response: { 200: Strict({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

    app.get(
      '/readyz',
      {
        config: none,
        schema: {
          tags: ['ops'],
          response: {
            200: Strict({ status: Type.Literal('ready'), checks: Strict({ database: Type.Boolean() }) }),
            503: Strict({ status: Type.Literal('unavailable'), checks: Strict({ database: Type.Boolean() }) }),
          },
        },
      },
      async (_request, reply) => {
        const database = await isReachable(platform.db);
        return database ? { status: 'ready' as const, checks: { database } } : reply.status(503).send({ status: 'unavailable' as const, checks: { database } });
      },
    );

    app.get('/metrics', { config: none, schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', registry.contentType);
      return registry.metrics();
    });

    app.get('/api/openapi.json', { config: none, schema: { hide: true } }, async () => app.swagger());
  };
}
