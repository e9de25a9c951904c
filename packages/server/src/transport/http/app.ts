/**
 * Builds the HTTPS API: TLS 1.2+ with AEAD suites only (tls-policy.ts), security headers, rate
 * limits, request IDs, structured logs with secrets redacted, strict schemas (unknown fields
 * refused, bodies never coerced), one error body, the OpenAPI document, and every domain's routes.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { accountsRoutes } from '../../accounts/routes/index.js';
import { auditRoutes } from '../../audit/routes.js';
import { deviceRoutes, enrollmentRoutes, stateRoutes, symmetricKeyRoutes } from '../../devices/routes/index.js';
import { RateLimitedError } from '../../errors.js';
import type { Metrics } from '../../ops/metrics.js';
import { opsRoutes } from '../../ops/routes.js';
import { pkiRoutes } from '../../pki/routes.js';
import { telemetryRoutes } from '../../telemetry/routes.js';
import { blobRoutes, releaseRoutes, repositoryRoutes, rolloutRoutes } from '../../updates/routes/index.js';
import type { Platform } from '../../platform.js';
import { SERVER_TLS } from '../tls-policy.js';
import { installAuthentication } from './auth.js';
import { clientErrorHandler, frameworkErrors, installAnswerHeaders, installDraining } from './edge.js';
import { declareCommonAnswers } from './declared-answers.js';
import { errorResponder, installErrorHandling } from './errors.js';
import { ErrorBodySchema } from './schemas.js';
import { buildValidator } from './validators.js';

export interface HttpOptions {
  tls: { cert: string; key: string };
  /** Where the HTTP answers are counted and /metrics reads from. */
  metrics: Metrics;
  logger?: boolean;
  /** Where logs go (default standard output); tests capture them to check redaction. */
  logStream?: NodeJS.WritableStream;
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

export async function buildHttpApp(platform: Platform, options: HttpOptions): Promise<FastifyInstance> {
  const { config } = platform;
  const respond = errorResponder(config.http.bodyLimitBytes);
  const app = Fastify({
    // A client certificate is asked for but never required: operators' browsers and curl without one
    // connect as before; device routes (EST simplereenroll, bootstrap enrollment) verify it themselves.
    https: { ...SERVER_TLS, cert: options.tls.cert, key: options.tls.key, requestCert: true, rejectUnauthorized: false },
    logger:
      options.logger === false
        ? false
        : {
            level: config.log.level,
            redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
            ...(options.logStream ? { stream: options.logStream } : {}),
          },
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    schemaController: { compilersFactory: { buildValidator } },
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
  await app.register(rateLimit, {
    max: config.http.rateLimitPerMinute,
    timeWindow: '1 minute',
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError(
        `Too many requests: at most ${context.max} per ${context.after}; try again later`,
        Math.ceil(context.ttl / 1000),
      ),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Bulwark API', version: '0.1.0', description: 'Self-hostable, secure-by-default IoT device cloud' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A session token (bws_…) or an API key (bwk_…)' },
          cookie: { type: 'apiKey', in: 'cookie', name: '__Host-bulwark_session' },
        },
      },
    },
  });

  installAuthentication(app, platform.accounts.authenticator, platform.accounts.sessions);
  await app.register(opsRoutes(platform, options.metrics));
  await app.register(pkiRoutes(platform));
  await app.register(accountsRoutes(platform), { prefix: '/api/v1' });
  await app.register(auditRoutes(platform), { prefix: '/api/v1' });
  await app.register(deviceRoutes(platform), { prefix: '/api/v1' });
  await app.register(enrollmentRoutes(platform));
  await app.register(symmetricKeyRoutes(platform));
  await app.register(telemetryRoutes(platform), { prefix: '/api/v1' });
  await app.register(stateRoutes(platform), { prefix: '/api/v1' });
  // Each updates plugin holds operator routes (/api/v1/updates/…), device routes (/device/v1/updates/…)
  // and, for the repository and releases, the public TUF paths (/tuf/<organization>/…): no prefix here.
  await app.register(repositoryRoutes(platform));
  await app.register(releaseRoutes(platform));
  await app.register(blobRoutes(platform));
  await app.register(rolloutRoutes(platform));
  return app;
}
