/**
 * The error answers the shared machinery gives, declared once for every route that can get them
 * (so the OpenAPI document lists them without each route repeating them): the authentication door
 * (401, 403), schema validation and URL checks (400, 414), body parsing (400, 413, 415), the rate
 * limit (429), IDs that name nothing the caller may see (404), and failures and shutdown (500,
 * 503). A route's own declaration of a status is kept.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { Type, type TSchema } from 'typebox';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const DESCRIPTIONS: Record<number, string> = {
  400: 'The request is malformed or does not match its schema (request.invalid, naming each field)',
  401: 'No valid session, API key or token (auth.unauthenticated)',
  403: 'The caller may not do this: permission, principal kind, API key on an interactive route, restricted session or CSRF',
  404: 'Nothing the caller may see has this ID (resource.not_found)',
  413: 'The body is larger than http.bodyLimitBytes (request.too_large)',
  414: 'A path parameter is longer than 100 characters (request.uri_too_long)',
  415: 'The body is not of a media type this route reads (request.unsupported_media_type)',
  429: 'Too many requests from this address (request.rate_limited, Retry-After)',
  500: 'Unexpected error, answered with the request ID only (internal.error)',
  503: 'The node is shutting down (service.unavailable), or its database is unreachable or full (storage.unavailable, Retry-After)',
};

function methodsOf(route: RouteOptions): string[] {
  return Array.isArray(route.method) ? route.method : [route.method];
}

/** The statuses the shared machinery can answer on this route. */
function commonStatuses(route: RouteOptions): number[] {
  const statuses = [500, 503];
  const hasParams = route.url.includes(':') || route.url.includes('*');
  const takesBody = methodsOf(route).some((m) => BODY_METHODS.has(m.toUpperCase()));
  const auth = route.config?.auth;
  if (hasParams || takesBody || route.schema?.querystring || route.schema?.headers) statuses.push(400);
  if (hasParams) statuses.push(404, 414);
  if (takesBody) statuses.push(413, 415);
  if (auth && auth.principal !== 'none') statuses.push(401, 403);
  if (route.config?.rateLimit !== false) statuses.push(429);
  return statuses;
}

export function declareCommonAnswers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = (route.schema ??= {}) as { hide?: boolean; response?: Record<string, TSchema> };
    if (schema.hide) return;
    // Without a response schema the document would say "200 Default Response": a route must say what it answers.
    if (!schema.response) throw new Error(`${methodsOf(route).join(',')} ${route.url} declares no response schema`);
    for (const status of commonStatuses(route)) {
      schema.response[status] ??= Type.Ref('ErrorBody', { description: DESCRIPTIONS[status]! });
    }
  });
}
