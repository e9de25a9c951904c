/**
 * Builds the HTTPS API: TLS 1.2+ with AEAD suites only (tls-policy.ts), security headers, rate
 * limits, request IDs, structured logs with secrets redacted, strict schemas (unknown fields
 * refused, bodies never coerced), one error body and the OpenAPI document; then hands the app to
 * the `routes` callback the composition root gives (routes.ts), which registers every domain's routes.
 * Nothing here knows a domain.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RateLimitedError } from '../../errors.js';
import { SERVER_TLS } from '../tls-policy.js';
import { clientErrorHandler, frameworkErrors, installAnswerHeaders, installDraining } from './edge.js';
import { declareCommonAnswers } from './declared-answers.js';
import { errorResponder, installErrorHandling } from './errors.js';
import { ErrorBodySchema } from './schemas.js';
import { buildSerializer } from './serializers.js';
import { buildValidator } from './validators.js';

/** Counts the HTTP answers (ops/metrics.ts); its hook goes first so a refused request still counts. */
export interface HttpInstrumentation {
  instrument(app: FastifyInstance): void;
}

export interface HttpOptions {
  tls: { cert: string; key: string };
  /** config.http's limits at the edge. */
  http: { bodyLimitBytes: number; rateLimitPerMinute: number; trustProxy: boolean };
  /** config.log.level */
  logLevel: string;
  /** Where the HTTP answers are counted and /metrics reads from. */
  metrics: HttpInstrumentation;
  /** Registers the routes (and the authentication hook) once the plumbing is in place. */
  routes: (app: FastifyInstance) => Promise<void>;
  logger?: boolean;
  /** Where logs go (default standard output); tests capture them to check redaction. */
  logStream?: NodeJS.WritableStream;
  /** Fields on every log line, beside pino's pid and hostname (a worker's number). */
  logBindings?: Record<string, unknown>;
  /**
   * Where the per-client request counts live when several processes serve one deployment (nodes,
   * workers): a Redis connection and the deployment's key prefix. Without it each process counts
   * alone, so a client gets the limit once per process.
   */
  rateLimitStore?: { redis: Redis; nameSpace: string };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.code',
  '*.secret',
];

export async function buildHttpApp(options: HttpOptions): Promise<FastifyInstance> {
  const { http } = options;
  const respond = errorResponder(http.bodyLimitBytes);
  const app = Fastify({
    // A client certificate is asked for but never required: operators' browsers and curl without one
    // connect as before; device routes (EST simplereenroll, bootstrap enrollment) verify it themselves.
    https: { ...SERVER_TLS, cert: options.tls.cert, key: options.tls.key, requestCert: true, rejectUnauthorized: false },
    logger:
      options.logger === false
        ? false
        : {
            level: options.logLevel,
            redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
            ...(options.logBindings ? { base: { pid: process.pid, hostname: hostname(), ...options.logBindings } } : {}),
            ...(options.logStream ? { stream: options.logStream } : {}),
          },
    bodyLimit: http.bodyLimitBytes,
    trustProxy: http.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    schemaController: { compilersFactory: { buildValidator, buildSerializer } },
    // Answers made outside the route pipeline carry the same headers and error body (edge.ts).
    frameworkErrors: frameworkErrors(respond),
    clientErrorHandler,
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.removeContentTypeParser('text/plain');
  // First hook of all: a request refused by a later one (rate limit, drain) still counts under its route.
  options.metrics.instrument(app);
  installAnswerHeaders(app);
  installDraining(app);
  app.addSchema(ErrorBodySchema);
  declareCommonAnswers(app);
  installErrorHandling(app, respond);

  await app.register(cookie);
  // The deployment-wide limit runs as an app-level hook, ahead of authentication (added with the
  // routes): as a route-level hook (the plugin's `global` default) it ran after the authentication
  // hook, so a request refused there (401: a missing, wrong or expired credential) was never counted,
  // and a flood of bad credentials, each costing a lookup, went unlimited. Routes with their own
  // `config.rateLimit` (a stricter limit, or `false` for health checks) keep only their own.
  await app.register(rateLimit, {
    global: false,
    max: http.rateLimitPerMinute,
    timeWindow: '1 minute',
    // Counts shared through Redis when there is a store; a store that does not answer lets requests
    // through uncounted (the API keeps serving without Redis, as it does for the broker's routing).
    ...(options.rateLimitStore ? { ...options.rateLimitStore, skipOnError: true } : {}),
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError(
        `Too many requests: at most ${context.max} per ${context.after}; try again later`,
        Math.ceil(context.ttl / 1000),
      ),
  });
  const limitEveryRequest = app.rateLimit();
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.rateLimit != null) return;
    await limitEveryRequest.call(app, request, reply);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Bulwark API', version: '0.1.0', description: 'Self-hostable, secure-by-default IoT device cloud' },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              "A session token (bws_…), an API key (bwk_…), or a companion app's OAuth access token (a JWT, on routes that name its scope)",
          },
          cookie: { type: 'apiKey', in: 'cookie', name: '__Host-bulwark_session' },
        },
      },
    },
  });

  await options.routes(app);
  return app;
}
