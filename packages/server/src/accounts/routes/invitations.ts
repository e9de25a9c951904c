/**
 * Operator invitations: invite, list and withdraw (operators with the users permissions), and
 * accept with the emailed token (anonymous, rate-limited per address).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { InvitationService } from '../invitations.js';
import { actorOf } from './authentication.js';
import type { OperatorInvitationView } from '@bulwark/protocol';
import { errorResponses, IdParams, Ok, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { Email, Password, Role, UserSchema } from './schemas.js';
import { OneTimeToken } from './self-service-schemas.js';
import { publicBaseUrl } from './public-url.js';

const InvitationSchema = servesView<OperatorInvitationView>()(
  Strict({
    id: Type.String(),
    email: Type.String(),
    name: Type.String(),
    role: Type.String(),
    invitedBy: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    expiresAt: Timestamp,
  }),
);

const Name = Type.String({ minLength: 1, maxLength: 200 });

export interface InvitationRouteDeps {
  invitations: InvitationService;
  /** config.http.publicUrl: the base of the links mailed. */
  publicUrl: string | undefined;
  loginRateLimitPerMinute: number;
}

export function invitationRoutes(deps: InvitationRouteDeps) {
  const { invitations } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/invitations',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: 'Invite someone by email to join as an operator in a role I may grant (replaces a pending invitation for the address)',
          body: Strict({ email: Email, name: Name, role: Role }),
          response: { 201: Strict({ invitation: InvitationSchema }), ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        const invitation = await invitations.invite(actorOf(request), { ...request.body, linkBase: publicBaseUrl(deps.publicUrl, root) });
        return reply.status(201).send({ invitation });
      },
    );

    app.get(
      '/invitations',
      {
        config: { auth: { principal: 'operator', permission: 'users:read' } },
        schema: {
          tags: ['users'],
          summary: 'Pending invitations of my organization',
          response: { 200: Strict({ invitations: Type.Array(InvitationSchema) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ invitations: await invitations.list(actorOf(request)) }),
    );

    app.delete(
      '/invitations/:id',
      {
        config: { auth: { principal: 'operator', permission: 'users:manage' } },
        schema: {
          tags: ['users'],
          summary: 'Withdraw a pending invitation',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await invitations.revoke(actorOf(request), request.params.id);
        return { ok: true as const };
      },
    );

    app.post(
      '/invitations/accept',
      {
        config: { auth: { principal: 'none' }, rateLimit: { max: deps.loginRateLimitPerMinute, timeWindow: '1 minute' } },
        schema: {
          tags: ['users'],
          summary: 'Accept an invitation with the token from the email: creates my operator account with the password I choose',
          body: Strict({ token: OneTimeToken, password: Password, name: Type.Optional(Name) }),
          response: { 201: Strict({ user: UserSchema }), ...errorResponses(400, 409, 429) },
        },
      },
      async (request, reply) => {
        const user = await invitations.accept({ ...request.body, sourceIp: request.ip });
        return reply.status(201).send({ user });
      },
    );
  };
}
