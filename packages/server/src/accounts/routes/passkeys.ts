/**
 * Passkeys (WebAuthn) under /api/v1/auth/passkeys: register one (a signed-in user after a fresh
 * step-up, or a user whose restricted session asks for a second factor), list, rename and remove
 * one's own, sign in without a password (usernameless: the options name no account), complete
 * the MFA step or a step-up with one; and the organization's passkey policy. The relying party
 * (RP ID, accepted origins) comes from config, defaulting to the public URL.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Clock } from '../../clock.js';
import { ConflictError } from '../../errors.js';
import type { Config } from '../../ops/config.js';
import type { PasskeyPolicy } from '@bulwark/protocol';
import { errorResponses, IdParams, Ok, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import type { LoginService } from '../login.js';
import { relyingParty, type PasskeyService } from '../passkeys.js';
import type { AccountsService } from '../service.js';
import { actorOf, sessionOf } from './authentication.js';
import { contextOf } from './auth.js';
import { publicBaseUrl } from './public-url.js';
import { LoginResponse, OrganizationSchema, Role } from './schemas.js';
import { replyWithSession } from './session-reply.js';

/** Binds a passwordless ceremony to the browser that asked for its options (cookie mode). */
const CEREMONY_COOKIE = '__Host-bulwark_passkey';

const B64Url = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$' });
const CredentialId = B64Url(1366);
const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 });
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]));
const Extensions = Type.Record(Type.String(), Type.Unknown(), { maxProperties: 16 });

const RegistrationCredential = Strict(
  {
    id: CredentialId,
    rawId: CredentialId,
    type: Type.Literal('public-key'),
    response: Strict({
      clientDataJSON: B64Url(4096),
      attestationObject: B64Url(65_536),
      authenticatorData: Type.Optional(B64Url(65_536)),
      transports: Type.Optional(Transports),
      publicKeyAlgorithm: Type.Optional(Type.Integer()),
      publicKey: Type.Optional(B64Url(4096)),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: Extensions,
  },
  { description: 'The PublicKeyCredential from navigator.credentials.create(), as JSON (toJSON() or @simplewebauthn/browser)' },
);

const AssertionCredential = Strict(
  {
    id: CredentialId,
    rawId: CredentialId,
    type: Type.Literal('public-key'),
    response: Strict({
      clientDataJSON: B64Url(4096),
      authenticatorData: B64Url(65_536),
      signature: B64Url(1024),
      userHandle: Type.Optional(B64Url(128)),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: Extensions,
  },
  { description: 'The PublicKeyCredential from navigator.credentials.get(), as JSON' },
);

const Options = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Options for navigator.credentials.create() or get(), JSON-encoded (binary fields base64url)',
});

const PasskeySchema = Strict({
  id: Type.String(),
  name: Type.String(),
  credentialId: Type.String(),
  transports: Type.Array(Type.String()),
  deviceType: Type.Union([Type.Literal('singleDevice'), Type.Literal('multiDevice')]),
  backedUp: Type.Boolean(),
  createdAt: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
});

const Mode = Type.Optional(
  Type.Union([Type.Literal('token'), Type.Literal('cookie')], {
    description: 'token (default): bearer token and ceremony secret in the body; cookie: HttpOnly cookies + CSRF token',
  }),
);

export interface PasskeyRouteDeps {
  passkeys: PasskeyService;
  login: LoginService;
  service: AccountsService;
  clock: Clock;
  passkeyConfig: Config['passkeys'];
  /** config.http.publicUrl: the default origin and RP ID. */
  publicUrl: string | undefined;
  loginRateLimitPerMinute: number;
}

export function passkeyRoutes(deps: PasskeyRouteDeps) {
  const { passkeys, login, service, clock } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const limit = { max: deps.loginRateLimitPerMinute, timeWindow: '1 minute' };
    const rp = () => relyingParty(deps.passkeyConfig, publicBaseUrl(deps.publicUrl, root));
    const input = (request: FastifyRequest, transport: 'cookie' | 'bearer') => ({ ...contextOf(request, transport), rp: rp() });

    app.post(
      '/auth/passkeys/registration/options',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_enrollment', 'passkey_enrollment'] }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Start registering a passkey (a full session needs a recent step-up); options for navigator.credentials.create()',
          response: { 200: Strict({ options: Options }), ...errorResponses(401, 403, 409, 429) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const session = sessionOf(request);
        // A restricted enrolment session comes straight from proving the password; a full one re-proves a factor.
        if (session.scope === 'full') service.requireStepUp(actor);
        return { options: (await passkeys.registrationOptions(actor, session.id, rp())) as unknown as Record<string, unknown> };
      },
    );

    app.post(
      '/auth/passkeys/registration/verify',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_enrollment', 'passkey_enrollment'] }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Finish registering a passkey; an enrolment session is replaced by the one the user is now entitled to',
          body: Strict({ response: RegistrationCredential, name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }),
          response: {
            200: Strict({ passkey: PasskeySchema, session: Type.Optional(LoginResponse) }),
            ...errorResponses(400, 401, 403, 409, 429),
          },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        const session = sessionOf(request);
        const passkey = await passkeys.register(
          actor,
          session.id,
          rp(),
          request.body.response as unknown as RegistrationResponseJSON,
          request.body.name,
        );
        if (session.scope === 'full') return { passkey };
        const advanced = await login.advanceAfterEnrolment(session, contextOf(request, session.transport));
        return { passkey, session: replyWithSession(reply, advanced, clock.now()) };
      },
    );

    app.get(
      '/auth/passkeys',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['passkeys'],
          summary: 'My passkeys',
          response: { 200: Strict({ passkeys: Type.Array(PasskeySchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ passkeys: await passkeys.list(actorOf(request)) }),
    );

    app.patch(
      '/auth/passkeys/:id',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['passkeys'],
          summary: 'Rename one of my passkeys',
          params: IdParams,
          body: Strict({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: PasskeySchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => passkeys.rename(actorOf(request), request.params.id, request.body.name),
    );

    app.delete(
      '/auth/passkeys/:id',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['passkeys'],
          summary: 'Remove one of my passkeys (needs a recent step-up; not the last one a policy requires)',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        service.requireStepUp(actor);
        await passkeys.remove(actor, request.params.id);
        return { ok: true as const };
      },
    );

    app.post(
      '/auth/passkeys/authentication/options',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Start a passwordless sign-in: options for navigator.credentials.get() naming no account, and the ceremony secret',
          body: Type.Optional(Strict({ mode: Mode })),
          response: {
            200: Strict({
              options: Options,
              ceremony: Type.Optional(Type.String({ description: 'token mode: send it back with the response (cookie mode: a cookie)' })),
            }),
            ...errorResponses(400, 429),
          },
        },
      },
      async (request, reply) => {
        const { options, ceremony } = await passkeys.assertionOptions({ purpose: 'authentication' }, rp());
        const opts = options as unknown as Record<string, unknown>;
        if (request.body?.mode === 'cookie') {
          setCeremonyCookie(reply, ceremony!, deps.passkeyConfig.challengeSeconds);
          return { options: opts };
        }
        return { options: opts, ceremony: ceremony! };
      },
    );

    app.post(
      '/auth/passkeys/authentication/verify',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Sign in with a passkey (user verification required: it counts as both factors)',
          body: Strict({ response: AssertionCredential, ceremony: Type.Optional(Type.String({ maxLength: 128 })), mode: Mode }),
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (request, reply) => {
        const cookieMode = request.body.mode === 'cookie';
        const ceremony = cookieMode ? request.cookies[CEREMONY_COOKIE] : request.body.ceremony;
        if (cookieMode) reply.clearCookie(CEREMONY_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
        const outcome = await login.signInWithPasskey({
          ...input(request, cookieMode ? 'cookie' : 'bearer'),
          response: request.body.response as unknown as AuthenticationResponseJSON,
          ceremony,
        });
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.post(
      '/auth/passkeys/mfa/options',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_pending'] }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'At the MFA step of a sign-in: options naming my passkeys',
          response: { 200: Strict({ options: Options }), ...errorResponses(401, 403, 409, 429) },
        },
      },
      async (request) => {
        const session = pendingSession(request);
        const { options } = await passkeys.assertionOptions({ purpose: 'mfa', sessionId: session.id, userId: session.user_id }, rp());
        return { options: options as unknown as Record<string, unknown> };
      },
    );

    app.post(
      '/auth/passkeys/mfa/verify',
      {
        config: { auth: { principal: 'any', allowScopes: ['mfa_pending'] }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Complete the MFA step of a sign-in with a passkey',
          body: Strict({ response: AssertionCredential }),
          response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 409, 429) },
        },
      },
      async (request, reply) => {
        const session = pendingSession(request);
        const outcome = await login.completeMfaWithPasskey(session, {
          ...input(request, session.transport),
          response: request.body.response as unknown as AuthenticationResponseJSON,
        });
        return replyWithSession(reply, outcome, clock.now());
      },
    );

    app.post(
      '/auth/passkeys/step-up/options',
      {
        config: { auth: { principal: 'any' }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Start a step-up with a passkey: options naming my passkeys',
          response: { 200: Strict({ options: Options }), ...errorResponses(401, 403, 429) },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        const { options } = await passkeys.assertionOptions({ purpose: 'step_up', sessionId: session.id, userId: session.user_id }, rp());
        return { options: options as unknown as Record<string, unknown> };
      },
    );

    app.post(
      '/auth/passkeys/step-up/verify',
      {
        config: { auth: { principal: 'any' }, rateLimit: limit },
        schema: {
          tags: ['passkeys'],
          summary: 'Re-prove a factor with a passkey before a sensitive action',
          body: Strict({ response: AssertionCredential }),
          response: { 200: Ok, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        await login.stepUpWithPasskey(session, {
          ...input(request, session.transport),
          response: request.body.response as unknown as AuthenticationResponseJSON,
        });
        return { ok: true as const };
      },
    );

    app.put(
      '/org/passkey-policy',
      {
        config: { auth: { principal: 'operator', permission: 'org:manage' } },
        schema: {
          tags: ['organization'],
          summary:
            'Name the roles that must sign in with a passkey (members without one register one at next sign-in); needs a recent step-up',
          body: servesView<PasskeyPolicy>()(Strict({ passkeyRequiredRoles: Type.Array(Role, { maxItems: 5 }) })),
          response: { 200: OrganizationSchema, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => service.setPasskeyPolicy(actorOf(request), request.body.passkeyRequiredRoles),
    );
  };
}

function pendingSession(request: FastifyRequest) {
  const session = sessionOf(request);
  if (session.scope !== 'mfa_pending')
    throw new ConflictError('This session has no sign-in step waiting for a second factor', undefined, 'auth.mfa_not_pending');
  return session;
}

function setCeremonyCookie(reply: FastifyReply, ceremony: string, seconds: number): void {
  reply.setCookie(CEREMONY_COOKIE, ceremony, { path: '/', httpOnly: true, secure: true, sameSite: 'strict', maxAge: seconds });
}
