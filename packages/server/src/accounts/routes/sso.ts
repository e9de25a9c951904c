/**
 * Single sign-on for operators: the sign-in through the organization's OpenID Connect provider
 * (start → provider → callback), the provider's configuration and the MFA policy (owners and
 * admins, with a fresh step-up), and the operators' security report.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Clock } from '../../clock.js';
import type { AccountsService } from '../service.js';
import type { SecurityReportService } from '../security-report.js';
import type { SsoService } from '../sso.js';
import type { SsoConfigService } from '../sso-config.js';
import { actorOf } from './authentication.js';
import { errorResponses, Ok, Strict, Timestamp } from '../../transport/http/schemas.js';
import { LoginResponse, OrganizationSchema, OrgSlug, Role } from './schemas.js';
import { replyWithSession } from './session-reply.js';
import { contextOf } from './auth.js';

/** Binds a started sign-in to the browser that started it; Lax, since the provider's redirect back is a cross-site navigation. */
export const SSO_BROWSER_COOKIE = '__Host-bulwark_sso';
const NoStore = { 'cache-control': 'no-store', pragma: 'no-cache' };
const Param = Type.Optional(Type.String({ maxLength: 4096 }));

const SsoConfigBody = Strict({
  issuer: Type.String({
    minLength: 8,
    maxLength: 500,
    description: "The provider's issuer URL (https), exactly as its discovery document names it",
  }),
  clientId: Type.String({ minLength: 1, maxLength: 255 }),
  clientSecret: Type.Optional(
    Type.String({ minLength: 1, maxLength: 1024, description: 'Sealed under the master key; omit to keep the current one' }),
  ),
  redirectUri: Type.Optional(Type.String({ maxLength: 500, description: 'Default: <publicUrl>/api/v1/auth/sso/<org>/callback' })),
  scopes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 20 })),
  roleClaim: Type.Optional(
    Type.String({ minLength: 1, maxLength: 100, description: 'ID token claim whose values map to roles (default groups)' }),
  ),
  roleMapping: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Role, { maxProperties: 100 })),
  defaultRole: Type.Optional(Type.Union([Role, Type.Null()], { description: 'Role when no mapping matches; null refuses the sign-in' })),
  mfaAcrValues: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 20 })),
  ssoOnly: Type.Optional(Type.Boolean({ description: "Refuse passwords for the organization's operators (except the break-glass owner)" })),
  breakGlassUserId: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  maxSessionMinutes: Type.Optional(Type.Integer({ minimum: 5, maximum: 1440, description: 'Bound on an SSO session (default 60)' })),
  apiKeyReauthDays: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 90,
      description: "An SSO operator's API keys work while their last provider sign-in is this recent (default 7)",
    }),
  ),
});

const SsoConfigSchema = Strict({
  issuer: Type.String(),
  clientId: Type.String(),
  clientSecretSet: Type.Literal(true),
  redirectUri: Type.String(),
  scopes: Type.Array(Type.String()),
  roleClaim: Type.String(),
  roleMapping: Type.Record(Type.String(), Type.String()),
  defaultRole: Type.Union([Type.String(), Type.Null()]),
  mfaAcrValues: Type.Array(Type.String()),
  ssoOnly: Type.Boolean(),
  breakGlassUserId: Type.Union([Type.String(), Type.Null()]),
  maxSessionMinutes: Type.Integer(),
  apiKeyReauthDays: Type.Integer(),
  updatedAt: Timestamp,
});

const SecurityReportSchema = Strict({
  organizationId: Type.String(),
  mfaRequiredRoles: Type.Array(Type.String()),
  ssoConfigured: Type.Boolean(),
  ssoOnly: Type.Boolean(),
  operators: Type.Array(
    Strict({
      id: Type.String(),
      email: Type.String(),
      role: Type.Union([Type.String(), Type.Null()]),
      status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
      factors: Strict({ password: Type.Boolean(), totp: Type.Boolean(), passkey: Type.Boolean(), sso: Type.Boolean() }),
      lastSignInAt: Type.Union([Timestamp, Type.Null()]),
      mfaRequired: Type.Boolean(),
      meetsMfaPolicy: Type.Boolean(),
      breakGlass: Type.Boolean(),
    }),
  ),
});

export interface SsoRouteDeps {
  sso: SsoService;
  ssoConfig: SsoConfigService;
  securityReport: SecurityReportService;
  service: AccountsService;
  clock: Clock;
  loginRateLimitPerMinute: number;
}

export function ssoRoutes({ sso, ssoConfig, securityReport, service, clock, loginRateLimitPerMinute }: SsoRouteDeps) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const loginLimit = { max: loginRateLimitPerMinute, timeWindow: '1 minute' };
    const OrgParam = Strict({ org: OrgSlug });

    app.get(
      '/auth/sso/:org/start',
      {
        config: { auth: { principal: 'none' }, rateLimit: loginLimit },
        schema: {
          tags: ['auth'],
          summary: "Start signing in through the organization's identity provider (redirects there with PKCE, state and nonce)",
          params: OrgParam,
          querystring: Strict({
            mode: Type.Optional(
              Type.Union([Type.Literal('token'), Type.Literal('cookie')], {
                description: 'cookie (default): HttpOnly session cookie + CSRF token; token: bearer token in the callback body',
              }),
            ),
          }),
          response: {
            302: Type.Null({ description: "Found: the provider's authorization endpoint" }),
            ...errorResponses(400, 404, 429, 502),
          },
        },
      },
      async (request, reply) => {
        const { authorizationUrl, browserToken } = await sso.start(
          request.params.org,
          request.query.mode === 'token' ? 'bearer' : 'cookie',
        );
        reply.setCookie(SSO_BROWSER_COOKIE, browserToken, { path: '/', httpOnly: true, secure: true, sameSite: 'lax', maxAge: 600 });
        return reply.status(302).headers(NoStore).header('location', authorizationUrl).send(null);
      },
    );

    app.get(
      '/auth/sso/:org/callback',
      {
        config: { auth: { principal: 'none' }, rateLimit: loginLimit },
        schema: {
          tags: ['auth'],
          summary: "The provider's redirect back: code exchange, ID token validation, then a session (or the MFA step the policy asks for)",
          params: OrgParam,
          // Providers add parameters of their own (session_state...): unknown ones are ignored.
          querystring: Type.Object(
            { code: Param, state: Param, iss: Param, error: Param, error_description: Param, error_uri: Param },
            { additionalProperties: true },
          ),
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 404, 429, 502) },
        },
      },
      async (request, reply) => {
        const query = Object.fromEntries(
          Object.entries(request.query as Record<string, unknown>).filter(([, v]) => typeof v === 'string'),
        ) as Record<string, string>;
        reply.headers(NoStore);
        reply.clearCookie(SSO_BROWSER_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'lax' });
        const outcome = await sso.callback(request.params.org, query, request.cookies[SSO_BROWSER_COOKIE], contextOf(request));
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.get(
      '/org/sso',
      {
        config: { auth: { principal: 'operator', permission: 'org:read' } },
        schema: {
          tags: ['organization'],
          summary: 'The single sign-on configuration (never the client secret)',
          response: { 200: SsoConfigSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => ssoConfig.getConfig(actorOf(request)),
    );

    app.put(
      '/org/sso',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['organization'],
          summary: 'Configure single sign-on (provider, claim to role mapping, SSO only and break-glass owner); needs a recent step-up',
          body: SsoConfigBody,
          response: { 200: SsoConfigSchema, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => ssoConfig.configure(actorOf(request), request.body),
    );

    app.delete(
      '/org/sso',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['organization'],
          summary: 'Remove single sign-on (passwords work again); needs a recent step-up',
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await ssoConfig.removeConfig(actorOf(request));
        return { ok: true as const };
      },
    );

    app.put(
      '/org/mfa-policy',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['organization'],
          summary: 'Name the roles that must use MFA (Bulwark TOTP, or MFA asserted by the identity provider); needs a recent step-up',
          body: Strict({ mfaRequiredRoles: Type.Array(Role, { maxItems: 5 }) }),
          response: { 200: OrganizationSchema, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => service.setMfaPolicy(actorOf(request), request.body.mfaRequiredRoles),
    );

    app.get(
      '/users/security-report',
      {
        config: { auth: { principal: 'operator', permission: 'users:read' } },
        schema: {
          tags: ['users'],
          summary: 'Every operator: factors (password, TOTP, SSO), last sign-in, and whether they meet the MFA policy',
          response: { 200: SecurityReportSchema, ...errorResponses(401, 403) },
        },
      },
      async (request) => securityReport.report(actorOf(request)),
    );
  };
}
