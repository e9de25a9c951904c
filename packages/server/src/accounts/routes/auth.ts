/**
 * Sign-in, the MFA step, step-up, sign-out and "who am I" for the current session.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Clock } from '../../clock.js';
import type { LoginService } from '../login.js';
import type { AccountsService } from '../service.js';
import type { SessionService } from '../sessions.js';
import type { AccountsStore } from '../store.js';
import { actorOf, sessionOf } from './authentication.js';
import { errorResponses, Ok, Strict } from '../../transport/http/schemas.js';
import { ConflictError } from '../../errors.js';
import { toUserView } from '../service.js';
import { Code, Email, LoginResponse, OrgSlug, Password, SessionAnswerSchema } from './schemas.js';
import { clearSessionCookie, replyWithSession } from './session-reply.js';

export const ALL_SCOPES = ['password_change', 'mfa_pending', 'mfa_enrollment', 'passkey_enrollment'] as const;

export interface AuthRouteDeps {
  login: LoginService;
  service: AccountsService;
  store: AccountsStore;
  sessions: SessionService;
  clock: Clock;
  loginRateLimitPerMinute: number;
}

export function authRoutes(deps: AuthRouteDeps) {
  const { login, service, store, sessions, clock } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const loginLimit = { max: deps.loginRateLimitPerMinute, timeWindow: '1 minute' };

    app.post(
      '/auth/login',
      {
        config: { auth: { principal: 'none' }, rateLimit: loginLimit },
        schema: {
          tags: ['auth'],
          summary: 'Sign in with organization, email and password',
          body: Strict({
            organization: OrgSlug,
            email: Email,
            password: Password,
            mode: Type.Optional(
              Type.Union([Type.Literal('token'), Type.Literal('cookie')], {
                description: 'token (default): bearer token in the body; cookie: HttpOnly session cookie + CSRF token',
              }),
            ),
          }),
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (request, reply) => {
        const outcome = await login.login({
          ...request.body,
          transport: request.body.mode === 'cookie' ? 'cookie' : 'bearer',
          sourceIp: request.ip,
          userAgent: request.headers['user-agent'] ?? '',
        });
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.post(
      '/auth/mfa',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_pending'] }, rateLimit: loginLimit },
        schema: {
          tags: ['auth'],
          summary: 'Complete sign-in with a TOTP or recovery code',
          body: Strict({ code: Code }),
          // 409 auth.mfa_not_pending: a session with no sign-in step waiting (found by transport/http/body-fuzz.test.ts)
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 409, 429) },
        },
      },
      async (request, reply) => {
        const pending = sessionOf(request);
        if (pending.scope !== 'mfa_pending')
          throw new ConflictError('This session has no sign-in step waiting for a code', undefined, 'auth.mfa_not_pending');
        const outcome = await login.completeMfa(pending, request.body.code, contextOf(request, pending.transport));
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.post(
      '/auth/step-up',
      {
        config: { auth: { principal: 'any' }, rateLimit: loginLimit },
        schema: {
          tags: ['auth'],
          summary: 'Re-prove a factor before a sensitive action',
          body: Strict({ code: Type.Optional(Code), password: Type.Optional(Password) }),
          response: { 200: Ok, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        await login.reprove(actor.userId, request.ip, { action: 'auth.step_up', reason: 'bad_proof' }, () =>
          service.stepUp(actor, request.body),
        );
        return { ok: true as const };
      },
    );

    app.post(
      '/auth/logout',
      {
        config: { auth: { principal: 'any', allowScopes: [...ALL_SCOPES] } },
        schema: { tags: ['auth'], summary: 'End this session', response: { 200: Ok, ...errorResponses(401, 403) } },
      },
      async (request, reply) => {
        await login.logout(sessionOf(request), request.ip);
        clearSessionCookie(reply);
        return { ok: true as const };
      },
    );

    app.get(
      '/auth/session',
      {
        config: { auth: { principal: 'any', allowScopes: [...ALL_SCOPES] } },
        schema: {
          tags: ['auth'],
          summary: 'The current session and user',
          response: {
            200: SessionAnswerSchema,
            ...errorResponses(401),
          },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        const user = await store.userById(session.user_id);
        return {
          user: toUserView(user!, clock.now()),
          scope: session.scope,
          expiresAt: new Date(session.expires_at).toISOString(),
          ...(session.transport === 'cookie' ? { csrfToken: sessions.csrfToken(session.id) } : {}),
        };
      },
    );
  };
}

export function contextOf(request: { ip: string; headers: Record<string, unknown> }, transport: 'cookie' | 'bearer' = 'bearer') {
  return { sourceIp: request.ip, userAgent: String(request.headers['user-agent'] ?? ''), transport };
}
