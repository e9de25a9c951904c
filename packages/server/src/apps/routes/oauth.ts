/**
 * The OAuth 2.1 endpoints of the authorization server, hand-written on `jose` and kept to what
 * RFC 6749, 7636 (PKCE), 7009 (revocation) and 8414 (metadata) ask of a server for public
 * clients (docs/apps.md says why not oidc-provider). Every error here is the RFC 6749 body
 * `{ error, error_description }` with the Bulwark code beside it (`code`); the authorization
 * endpoint sends errors back on the redirect URI only once client and redirect URI are known
 * good. Parameters this server does not know are ignored, as RFC 6749 §3.1 asks. A browser
 * navigating to the authorization endpoint without a usable answer (not signed in, consent to ask,
 * a request to explain) is sent to the hosted page `/app/authorize` with the same query
 * (negotiation.ts); the page asks again as JSON.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { ErrorCodes } from '@bulwark/protocol';
import { actorOf } from '../../accounts/routes/authentication.js';
import { APP_SCOPES } from '../../accounts/roles.js';
import { BulwarkError } from '../../errors.js';
import type { AppAuthorizationService } from '../authorization.js';
import type { AppGrantService } from '../grants.js';
import { OAuthError, type OAuthErrorName } from '../errors.js';
import type { AppSigningKeys } from '../signing-keys.js';
import { asksForJson, authorizePage, isNavigation } from './negotiation.js';

export interface OAuthRouteDeps {
  authorization: AppAuthorizationService;
  grants: AppGrantService;
  keys: AppSigningKeys;
  issuer: string;
  authorizeRateLimitPerMinute: number;
  tokenRateLimitPerMinute: number;
  /**
   * Whether this node serves the companion app (its build under http.consoleDir), whose
   * /app/authorize page a navigating browser is sent to. Without it, navigations get the JSON
   * answers as scripts do, rather than a redirect to a page that is not there.
   */
  hostedPages: boolean;
}

const OAuthErrorBody = Type.Object(
  { error: Type.String(), error_description: Type.String(), code: Type.Optional(Type.String()) },
  { description: 'RFC 6749 error: the error name, what was wrong, and the Bulwark error code' },
);
const ERROR_STATUSES = [400, 401, 403, 413, 415, 429, 500, 503];
const oauthErrors = (): Record<number, TSchema> => Object.fromEntries(ERROR_STATUSES.map((s) => [s, OAuthErrorBody]));

const Param = Type.Optional(Type.String({ maxLength: 2048 }));
const AuthorizationParams = {
  response_type: Param,
  client_id: Param,
  redirect_uri: Param,
  scope: Param,
  state: Param,
  code_challenge: Param,
  code_challenge_method: Param,
};
// Unknown parameters are ignored (RFC 6749 §3.1), so these objects are not strict.
const Open = { additionalProperties: true };
const Redirect = Type.Null({ description: 'Found: the answer is on the redirect URI (code and state, or error and state)' });
const NoStore = { 'cache-control': 'no-store', pragma: 'no-cache' };
const Location = Type.Object(
  { location: Type.String() },
  { description: 'Asked for with Accept: application/json: where to send the browser (the redirect URI with the code or the error)' },
);
/** Statuses of the authorization endpoint that a navigating browser is shown on the hosted page rather than as JSON. */
const SHOWN_ON_PAGE = new Set([400, 401, 403]);

/** The answer an authorization that ends on the redirect URI gets: a 302, or `{ location }` for a script that asked for JSON. */
function redirectAnswer(request: FastifyRequest, reply: FastifyReply, location: string) {
  reply.headers(NoStore);
  if (asksForJson(request)) return reply.status(200).send({ location });
  return reply.status(302).header('location', location).send(null);
}

const NAME_OF_STATUS: Record<number, OAuthErrorName> = {
  401: 'login_required',
  403: 'access_denied',
  429: 'temporarily_unavailable',
};

function statusOf(error: FastifyError): number {
  if (error instanceof BulwarkError) return error.status;
  return error.validation ? 400 : (error.statusCode ?? 500);
}

/**
 * The authorization endpoint's failures: a navigating browser goes to the hosted page (which asks
 * again and explains, or signs the consumer in); never to the redirect URI, which is not known good here.
 */
function authorizeErrorHandler(hostedPages: boolean) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply =>
    (SHOWN_ON_PAGE.has(statusOf(error)) && toHostedPage(hostedPages, request, reply)) || oauthErrorHandler(error, request, reply);
}

/**
 * Sends a browser navigating to the authorization endpoint to the hosted page, with the request's
 * query, when this node serves the page; null when the request is answered as a script's.
 */
function toHostedPage(hostedPages: boolean, request: FastifyRequest, reply: FastifyReply): FastifyReply | null {
  if (!hostedPages || !isNavigation(request)) return null;
  return reply.status(302).headers(NoStore).header('location', authorizePage(request)).send(null);
}

/** Any failure on these routes as the RFC 6749 error body. */
function oauthErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.headers(NoStore);
  if (error instanceof OAuthError)
    return reply.status(error.status).send({ error: error.oauthError, error_description: error.message, code: error.code });
  if (error instanceof BulwarkError) {
    if (error.status === 429 && typeof error.details?.retryAfterSeconds === 'number')
      reply.header('retry-after', String(error.details.retryAfterSeconds));
    const name = NAME_OF_STATUS[error.status] ?? (error.status < 500 ? 'invalid_request' : 'server_error');
    return reply.status(error.status).send({ error: name, error_description: error.message, code: error.code });
  }
  if (error.validation || (error.statusCode && error.statusCode >= 400 && error.statusCode < 500)) {
    const status = error.statusCode && error.statusCode !== 400 && ERROR_STATUSES.includes(error.statusCode) ? error.statusCode : 400;
    return reply.status(status).send({
      error: 'invalid_request',
      error_description: error.validation ? `Invalid request: ${error.message}` : error.message,
      code: ErrorCodes.appRequestInvalid,
    });
  }
  request.log.error({ err: error }, 'unhandled error');
  return reply.status(500).send({
    error: 'server_error',
    error_description: `Internal error; quote request ID ${request.id} when reporting it`,
    code: ErrorCodes.internal,
  });
}

/** application/x-www-form-urlencoded as RFC 6749 sends it: every parameter once. */
function parseForm(_request: FastifyRequest, body: string, done: (error: Error | null, value?: unknown) => void): void {
  const params = new URLSearchParams(body);
  const value: Record<string, string> = {};
  for (const [name, v] of params) {
    if (name in value) {
      done(new OAuthError('invalid_request', ErrorCodes.appRequestInvalid, `Parameter ${name} was sent more than once`));
      return;
    }
    value[name] = v;
  }
  done(null, value);
}

export function oauthRoutes(deps: OAuthRouteDeps) {
  const { authorization, grants, keys, issuer } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler(oauthErrorHandler);
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) =>
      parseForm(request, body as string, done),
    );
    const authorizeLimit = { max: deps.authorizeRateLimitPerMinute, timeWindow: '1 minute' };
    const tokenLimit = { max: deps.tokenRateLimitPerMinute, timeWindow: '1 minute' };

    app.get(
      '/.well-known/oauth-authorization-server',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['oauth'],
          summary: 'Authorization server metadata (RFC 8414)',
          response: {
            200: Type.Object({
              issuer: Type.String(),
              authorization_endpoint: Type.String(),
              token_endpoint: Type.String(),
              revocation_endpoint: Type.String(),
              jwks_uri: Type.String(),
              scopes_supported: Type.Array(Type.String()),
              response_types_supported: Type.Array(Type.String()),
              response_modes_supported: Type.Array(Type.String()),
              grant_types_supported: Type.Array(Type.String()),
              code_challenge_methods_supported: Type.Array(Type.String()),
              token_endpoint_auth_methods_supported: Type.Array(Type.String()),
              revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
            }),
            ...oauthErrors(),
          },
        },
      },
      async () => ({
        issuer,
        authorization_endpoint: `${issuer}/oauth/authorize`,
        token_endpoint: `${issuer}/oauth/token`,
        revocation_endpoint: `${issuer}/oauth/revoke`,
        jwks_uri: `${issuer}/oauth/jwks.json`,
        scopes_supported: [...APP_SCOPES],
        response_types_supported: ['code'],
        response_modes_supported: ['query'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
        revocation_endpoint_auth_methods_supported: ['none'],
      }),
    );

    app.get(
      '/oauth/jwks.json',
      {
        config: { auth: { principal: 'none' } },
        schema: {
          tags: ['oauth'],
          summary: 'The public keys access tokens are verified with (every key not yet retired)',
          response: {
            200: Type.Object({
              keys: Type.Array(
                Type.Object({
                  kty: Type.String(),
                  crv: Type.String(),
                  x: Type.String(),
                  kid: Type.String(),
                  alg: Type.String(),
                  use: Type.String(),
                }),
              ),
            }),
            ...oauthErrors(),
          },
        },
      },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=300');
        return keys.jwks();
      },
    );

    app.get(
      '/oauth/clients/:clientId',
      {
        config: { auth: { principal: 'none' }, rateLimit: authorizeLimit },
        schema: {
          tags: ['oauth'],
          summary:
            'Which app asks and for which brand (the hosted sign-in page, before anyone signs in): an active client only; with redirect_uri, only one registered for it',
          params: Type.Object({ clientId: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object({ redirect_uri: Param }, Open),
          response: {
            200: Type.Object({
              clientId: Type.String(),
              name: Type.String(),
              firstParty: Type.Boolean(),
              organization: Type.Object({ slug: Type.String(), name: Type.String() }),
            }),
            ...oauthErrors(),
          },
        },
      },
      async (request, reply) => {
        reply.headers(NoStore);
        return authorization.describeClient(request.params.clientId, request.query.redirect_uri);
      },
    );

    app.get(
      '/oauth/authorize',
      {
        config: { auth: { principal: 'consumer' }, rateLimit: authorizeLimit },
        errorHandler: authorizeErrorHandler(deps.hostedPages),
        schema: {
          tags: ['oauth'],
          summary:
            'Authorization endpoint (code + PKCE S256): redirects with a code, or answers the consent to ask for (third-party apps); a browser navigation without either goes to the hosted page /app/authorize',
          querystring: Type.Object(AuthorizationParams, Open),
          response: {
            200: Type.Union([
              Type.Object({
                consent_required: Type.Literal(true),
                client: Type.Object({ clientId: Type.String(), name: Type.String() }),
                scopes: Type.Array(Type.String()),
                request: Type.Object(AuthorizationParams),
                consent_endpoint: Type.String(),
              }),
              Location,
            ]),
            302: Redirect,
            ...oauthErrors(),
          },
        },
      },
      async (request, reply) => {
        const outcome = await authorization.authorize(actorOf(request), request.query);
        if (outcome.kind === 'redirect') return redirectAnswer(request, reply, outcome.location);
        reply.headers(NoStore);
        const toPage = toHostedPage(deps.hostedPages, request, reply);
        if (toPage) return toPage;
        return {
          consent_required: true as const,
          client: outcome.client,
          scopes: outcome.scopes,
          request: outcome.request,
          consent_endpoint: '/oauth/authorize/consent',
        };
      },
    );

    app.post(
      '/oauth/authorize/consent',
      {
        config: { auth: { principal: 'consumer' }, rateLimit: authorizeLimit },
        schema: {
          tags: ['oauth'],
          summary:
            'The consumer allows or denies a third-party app the scopes it asked for; redirects to the app (or answers { location } to Accept: application/json)',
          body: Type.Object({ ...AuthorizationParams, decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]) }, Open),
          response: { 200: Location, 302: Redirect, ...oauthErrors() },
        },
      },
      async (request, reply) => {
        const { decision, ...params } = request.body;
        const { location } = await authorization.consent(actorOf(request), params, decision);
        return redirectAnswer(request, reply, location);
      },
    );

    app.post(
      '/oauth/token',
      {
        config: { auth: { principal: 'none' }, rateLimit: tokenLimit },
        schema: {
          tags: ['oauth'],
          summary: 'Token endpoint: authorization_code (with code_verifier) or refresh_token grant',
          body: Type.Object(
            {
              grant_type: Param,
              client_id: Param,
              code: Param,
              redirect_uri: Param,
              code_verifier: Param,
              refresh_token: Param,
              scope: Param,
            },
            Open,
          ),
          response: {
            200: Type.Object({
              access_token: Type.String(),
              token_type: Type.Literal('Bearer'),
              expires_in: Type.Integer(),
              refresh_token: Type.String(),
              scope: Type.String(),
            }),
            ...oauthErrors(),
          },
        },
      },
      async (request, reply) => {
        reply.headers(NoStore);
        return grants.token(request.body, request.ip);
      },
    );

    app.post(
      '/oauth/revoke',
      {
        config: { auth: { principal: 'none' }, rateLimit: tokenLimit },
        schema: {
          tags: ['oauth'],
          summary: 'Revocation (RFC 7009): a refresh or access token ends its whole grant; unknown tokens are answered the same',
          body: Type.Object({ token: Param, token_type_hint: Param, client_id: Param }, Open),
          response: { 200: Type.Object({}), ...oauthErrors() },
        },
      },
      async (request, reply) => {
        await grants.revoke(request.body, request.ip);
        reply.headers(NoStore);
        return {};
      },
    );
  };
}
