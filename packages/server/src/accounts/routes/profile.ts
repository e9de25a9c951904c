/**
 * My account: read it, rename it, change its email address (request, then confirm with the
 * mailed token), export my data, and delete the account.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import type { ProfileService } from '../profile.js';
import { actorOf } from './authentication.js';
import { errorResponses, Ok, Strict, Timestamp } from '../../transport/http/schemas.js';
import { ApiKeySchema } from './api-keys.js';
import { Email, SessionFields, UserSchema } from './schemas.js';
import { clearSessionCookie } from './session-reply.js';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const ExportSchema = Strict({
  exportedAt: Timestamp,
  profile: UserSchema,
  organization: Strict({ id: Type.String(), slug: Type.String(), name: Type.String() }),
  mfa: Strict({ enabled: Type.Boolean(), enabledAt: Nullable(Timestamp), recoveryCodesRemaining: Type.Integer() }),
  sessions: Type.Array(Strict({ ...SessionFields, revokedAt: Nullable(Timestamp) })),
  apiKeys: Type.Array(ApiKeySchema),
  auditEntries: Type.Array(
    Strict({
      seq: Type.Integer(),
      ts: Timestamp,
      organizationId: Nullable(Type.String()),
      actor: Strict({ type: Type.String(), id: Nullable(Type.String()) }),
      action: Type.String(),
      target: Strict({ type: Nullable(Type.String()), id: Nullable(Type.String()) }),
      sourceIp: Nullable(Type.String()),
      outcome: Type.String(),
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  ),
  sections: Type.Record(Type.String(), Type.Unknown(), { description: 'what other domains hold about me, by section (devices)' }),
});

export function profileRoutes({ profile }: { profile: ProfileService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/me',
      // Reading who I am is harmless, and tells an API key whose it is (and a companion app with the account scope).
      {
        config: { auth: { principal: 'any', apiKeys: true, appScope: 'account' } },
        schema: { tags: ['me'], summary: 'My account', response: { 200: UserSchema, ...errorResponses(401) } },
      },
      async (request) => profile.me(actorOf(request)),
    );

    app.patch(
      '/me',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'Change my display name',
          body: Strict({ name: Type.String({ minLength: 1, maxLength: 200 }) }),
          response: { 200: UserSchema, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => profile.rename(actorOf(request), request.body.name),
    );

    app.post(
      '/me/email',
      {
        config: { auth: { principal: 'any' }, rateLimit: { max: 10, timeWindow: '1 hour' } },
        schema: {
          tags: ['me'],
          summary:
            'Ask to change my email address (needs a recent step-up): a token is mailed to the new address, a notice to the current one',
          body: Strict({ newEmail: Email }),
          response: { 202: Ok, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (request, reply) => {
        await profile.requestEmailChange(actorOf(request), request.body.newEmail);
        return reply.status(202).send({ ok: true as const });
      },
    );

    app.post(
      '/me/email/confirm',
      {
        config: { auth: { principal: 'any' } },
        schema: {
          tags: ['me'],
          summary: 'Confirm my new email address with the token mailed to it',
          body: Strict({ token: Type.String({ minLength: 1, maxLength: 200 }) }),
          response: { 200: UserSchema, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request) => profile.confirmEmailChange(actorOf(request), request.body.token),
    );

    app.get(
      '/me/export',
      {
        config: { auth: { principal: 'any', appScope: 'account' } },
        schema: {
          tags: ['me'],
          summary: 'Everything the platform holds about me, as JSON (no secrets or digests)',
          response: { 200: ExportSchema, ...errorResponses(401, 403) },
        },
      },
      async (request, reply) => {
        const data = await profile.exportData(actorOf(request));
        reply.header('content-disposition', 'attachment; filename="bulwark-account.json"');
        return data;
      },
    );

    app.delete(
      '/me',
      {
        config: { auth: { principal: 'any', appScope: 'account' } },
        schema: {
          tags: ['me'],
          summary: 'Delete my account with its sessions and API keys (needs a recent step-up; the last owner of an organization cannot)',
          response: { 200: Ok, ...errorResponses(401, 403, 409) },
        },
      },
      async (request, reply) => {
        await profile.deleteAccount(actorOf(request));
        clearSessionCookie(reply);
        return { ok: true as const };
      },
    );
  };
}
