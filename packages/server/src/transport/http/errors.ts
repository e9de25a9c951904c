/**
 * Maps every failure to `{ "error": { code, message, details } }`: Bulwark errors keep their code
 * and status; Fastify's validation, parsing, URL and size errors become stable request.* codes;
 * a database out of reach or full answers 503 `storage.unavailable` (retry); anything unexpected is logged with the request ID and answered without internals. No answer
 * echoes the request's URL.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, errorBody, type ErrorCode } from '@bulwark/protocol';
import { BulwarkError, isStorageUnavailable, StorageUnavailableError } from '../../errors.js';

const FASTIFY_CODES: Record<string, [number, ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ErrorCodes.requestTooLarge, 'The request body is larger than the limit'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, ErrorCodes.requestUnsupportedMediaType, 'Send the body as application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, ErrorCodes.requestInvalid, 'The Content-Length header does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ErrorCodes.requestInvalid, 'The body is empty but the content type says JSON'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ErrorCodes.requestInvalid, 'The body is not valid JSON'],
  FST_ERR_BAD_URL: [400, ErrorCodes.requestInvalid, 'The path is not a valid URL: check its percent-escapes'],
  FST_ERR_MAX_PARAM_LENGTH: [414, ErrorCodes.requestUriTooLong, 'A path parameter is longer than the limit'],
};

export type ErrorResponder = (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/** The error handler; also answers Fastify's framework errors (see edge.ts). */
export function errorResponder(bodyLimit: number): ErrorResponder {
  return (error, request, reply) => {
    if (error instanceof BulwarkError) {
      if (error.status === 429 && typeof error.details?.retryAfterSeconds === 'number')
        reply.header('retry-after', String(error.details.retryAfterSeconds));
      return reply.status(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if (error.validation) {
      const problems = error.validation.map((v) => ({
        field: `${error.validationContext ?? 'body'}${v.instancePath || ''}`.replace(/\//g, '.'),
        problem:
          v.keyword === 'additionalProperties'
            ? `unknown field "${(v.params as { additionalProperty?: string }).additionalProperty}"`
            : (v.message ?? 'is invalid'),
      }));
      const summary = problems.map((p) => `${p.field} ${p.problem}`).join('; ');
      return reply.status(400).send(errorBody(ErrorCodes.requestInvalid, `Invalid request: ${summary}`, { problems }));
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (known) {
      const [status, code, message] = known;
      return reply.status(status).send(errorBody(code, message, status === 413 ? { limitBytes: bodyLimit } : undefined));
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send(errorBody(ErrorCodes.requestInvalid, error.message));
    }
    if (isStorageUnavailable(error)) {
      // The database is out of reach or full: nothing was committed, and the caller may retry.
      request.log.error({ err: error }, 'storage unavailable: answered 503');
      const unavailable = new StorageUnavailableError();
      reply.header('retry-after', String(unavailable.details!.retryAfterSeconds));
      return reply.status(503).send(errorBody(unavailable.code, unavailable.message, unavailable.details));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply
      .status(500)
      .send(errorBody(ErrorCodes.internal, `Internal error; quote request ID ${request.id} when reporting it`, { requestId: request.id }));
  };
}

export function installErrorHandling(app: FastifyInstance, respond: ErrorResponder): void {
  app.setErrorHandler(respond);
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send(errorBody(ErrorCodes.notFound, `No route for ${request.method} at this path: the routes are listed in /api/openapi.json`));
  });
}
