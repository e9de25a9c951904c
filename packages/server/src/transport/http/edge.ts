/**
 * What every answer carries, whoever makes it: helmet's security headers (HSTS, CSP, nosniff…),
 * `Cache-Control: no-store` unless a route sets its own, and the request ID. Routes, the 404
 * handler and the error handler get them from hooks; the answers Fastify makes outside its route
 * pipeline (a malformed URL, a path parameter over the length limit, a request arriving while the
 * node drains, a request Node's HTTP parser refuses) get them here, with the same error body.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import { ErrorCodes, errorBody, type ErrorCode } from '@bulwark/protocol';
import { BulwarkError } from '../../errors.js';
import type { ErrorResponder } from './errors.js';

/** The security headers, computed once: none of them depends on the request. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const collector = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  };
  helmet({
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], frameAncestors: ["'none'"] } },
    hsts: { maxAge: 31536000, includeSubDomains: true },
  })({} as never, collector as never, () => undefined);
  return Object.freeze(headers);
})();

function answerHeaders(requestId: string): Record<string, string> {
  return { ...SECURITY_HEADERS, 'cache-control': 'no-store', 'x-request-id': requestId };
}

/** Headers on every answer made through the route pipeline (routes, 404, errors). */
export function installAnswerHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
}

/**
 * A request that arrives once the node has begun to close answers 503 with the error body (and
 * `Connection: close`, which Fastify adds), instead of Fastify's own 503 without headers.
 */
export function installDraining(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing)
      throw new BulwarkError(ErrorCodes.serviceUnavailable, 'This node is shutting down; retry on another node or in a moment', 503);
  });
}

/**
 * Fastify's `frameworkErrors`: answers made before a route is found. They run outside the hooks,
 * so the headers are set here; the body comes from the error handler, which never echoes the URL.
 */
export function frameworkErrors(respond: ErrorResponder) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(answerHeaders(request.id));
    return respond(error, request, reply);
  };
}

const CLIENT_ERRORS: Record<string, [number, ErrorCode, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, ErrorCodes.requestTimeout, 'The request was not received in time'],
  HPE_HEADER_OVERFLOW: [431, ErrorCodes.requestHeadersTooLarge, 'The request headers are larger than the limit'],
};

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (malformed, headers too
 * large, too slow). There is no request object, so the answer is written to the socket.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] = CLIENT_ERRORS[error.code ?? ''] ?? [400, ErrorCodes.requestInvalid, 'The request is not valid HTTP'];
  const requestId = randomUUID();
  this.log.debug({ err: error, reqId: requestId }, 'client error');
  if (socket.writable) {
    const payload = JSON.stringify(errorBody(code, message));
    const headers = {
      ...answerHeaders(requestId),
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(payload)),
      connection: 'close',
    };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head.join('')}\r\n${payload}`);
  }
  socket.destroy(error);
}
