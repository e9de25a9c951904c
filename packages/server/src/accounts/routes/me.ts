/**
 * The signed-in user's own security settings: password change (also the forced first change),
 * sessions (list, revoke), and the TOTP second factor (enrol, confirm, recovery codes, disable).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ConflictError } from '../../errors.js';
import type { Clock } from '../../clock.js';
import type { LoginService } from '../login.js';
import type { MfaService } from '../mfa.js';
import type { PasskeyService } from '../passkeys.js';
import type { AccountsService } from '../service.js';
import type { SessionService } from '../sessions.js';
import type { AccountsStore } from '../store.js';
import { actorOf, sessionOf } from './authentication.js';
import type { TotpEnrolment } from '@bulwark/protocol';
import { errorResponses, IdParams, Ok, servesView, Strict } from '../../transport/http/schemas.js';
import { mfaRequiredFor } from '../login.js';
import { contextOf } from './auth.js';
import { Code, LoginResponse, Password, SessionSchema } from './schemas.js';
import { replyWithSession } from './session-reply.js';

export interface MeRouteDeps {
  login: LoginService;
  service: AccountsService;
  sessions: SessionService;
  mfa: MfaService;
  passkeys: PasskeyService;
  store: AccountsStore;
  clock: Clock;
}

export function meRoutes(deps: MeRouteDeps) {
  const { login, service, sessions, mfa, passkeys, store, clock } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/me/password',
      {
        config: { auth: { principal: 'any', allowScopes: ['password_change'] } },
        schema: {
          tags: ['me'],
          summary: 'Change my password (needs the current one); ends my other sessions and returns a new one',
          body: Strict({ currentPassword: Password, newPassword: Password }),
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const session = sessionOf(request);
        const actor = actorOf(request);
        const outcome = await login.reprove(
          actor.userId,
          request.ip,
          { action: 'user.password_changed', reason: 'bad_current_password' },
          () =>
            service.changeOwnPassword(actor, request.body.currentPassword, request.body.newPassword, (trx) =>
              login.advance(session, contextOf(request, session.transport), trx),
            ),
        );
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.get(
      '/me/sessions',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'My active sessions',
          response: { 200: Strict({ sessions: Type.Array(SessionSchema) }), ...errorResponses(401) },
        },
      },
      async (request) => ({ sessions: await sessions.list(actorOf(request).userId, request.session?.id ?? null) }),
    );

    app.delete(
      '/me/sessions/:id',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'Revoke one of my sessions',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 404) },
        },
      },
      async (request) => {
        await service.revokeOwnSession(actorOf(request), request.params.id);
        return { ok: true as const };
      },
    );

    app.post(
      '/me/mfa/totp',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_enrollment'] } },
        schema: {
          tags: ['me'],
          summary: 'Start TOTP enrolment: returns the secret and an otpauth:// URI for the authenticator app',
          response: {
            200: servesView<TotpEnrolment>()(Strict({ secret: Type.String(), otpauthUri: Type.String() })),
            ...errorResponses(401, 409),
          },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const org = await store.organizationById(actor.organizationId);
        return mfa.beginEnrollment(actor, `Bulwark (${org?.name ?? 'organization'})`);
      },
    );

    app.post(
      '/me/mfa/totp/confirm',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_enrollment'] } },
        schema: {
          tags: ['me'],
          summary: 'Confirm enrolment with a first code; returns single-use recovery codes, shown once',
          body: Strict({ code: Code }),
          response: {
            200: Strict({ recoveryCodes: Type.Array(Type.String()), session: Type.Optional(LoginResponse) }),
            ...errorResponses(400, 401, 409),
          },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        const session = sessionOf(request);
        const result = await login.confirmMfaEnrollment(actor, session, request.body.code, contextOf(request, session.transport));
        return {
          recoveryCodes: result.recoveryCodes,
          ...(result.advanced ? { session: replyWithSession(reply, result.advanced, clock.now()) } : {}),
        };
      },
    );

    app.post(
      '/me/mfa/recovery-codes',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'Replace my recovery codes (needs a recent step-up)',
          response: { 200: Strict({ recoveryCodes: Type.Array(Type.String()) }), ...errorResponses(401, 403, 409) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        service.requireStepUp(actor);
        return { recoveryCodes: await service.regenerateRecoveryCodes(actor) };
      },
    );

    app.delete(
      '/me/mfa',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'Turn off my second factor (needs a recent step-up; not allowed where my role requires MFA)',
          response: { 200: Ok, ...errorResponses(401, 403, 409) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        service.requireStepUp(actor);
        const user = await store.userById(actor.userId);
        const org = await store.organizationById(actor.organizationId);
        if (!user?.mfa_enabled_at) throw new ConflictError('MFA is not enabled', undefined, 'auth.mfa_not_enabled');
        // A passkey is a second factor too: the policy holds while the user keeps one.
        if (org && mfaRequiredFor(org, user) && (await passkeys.count(user.id)) === 0)
          throw new ConflictError(`Your organization requires MFA for the ${user.role} role`, undefined, 'auth.mfa_required_by_policy');
        await service.disableOwnMfa(actor);
        return { ok: true as const };
      },
    );
  };
}
