/**
 * Password reset by email: ask for a link (same answer, at the same time, whether or not the account exists) and
 * set a new password with its token. Both are open to anonymous callers, rate-limited per address.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { PasswordRecoveryService } from '../recovery.js';
import { errorResponses, Ok, Strict } from '../../transport/http/schemas.js';
import { Email, OrgSlug, Password } from './schemas.js';
import { Accepted, OneTimeToken } from './self-service-schemas.js';
import { publicBaseUrl } from './public-url.js';

const REQUESTED = {
  status: 'accepted' as const,
  message: 'If an active account matches, an email with a link to reset its password is on its way. The link works once and expires soon.',
};

export interface RecoveryRouteDeps {
  recovery: PasswordRecoveryService;
  /** config.http.publicUrl: the base of the links mailed. */
  publicUrl: string | undefined;
  loginRateLimitPerMinute: number;
}

export function recoveryRoutes(deps: RecoveryRouteDeps) {
  const { recovery } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const limit = { max: deps.loginRateLimitPerMinute, timeWindow: '1 minute' };

    app.post(
      '/auth/password-reset/request',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['auth'],
          summary: 'Ask for a password reset link by email (the answer is the same whether or not the account exists)',
          body: Strict({ organization: OrgSlug, email: Email }),
          response: { 202: Accepted, ...errorResponses(400, 429) },
        },
      },
      async (request, reply) => {
        // The work starts once the answer is out ('close' also covers a client that went away).
        const answered = new Promise((resolve) => reply.raw.once('close', resolve));
        recovery.requestAfterAnswer(
          { ...request.body, sourceIp: request.ip, linkBase: publicBaseUrl(deps.publicUrl, root) },
          answered,
          (error) => request.log.error({ err: error }, 'password reset request failed after its answer'),
        );
        return reply.status(202).send(REQUESTED);
      },
    );

    app.post(
      '/auth/password-reset/complete',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['auth'],
          summary: 'Set a new password with the token from the reset email; signs the account out everywhere',
          body: Strict({ token: OneTimeToken, newPassword: Password }),
          response: { 200: Ok, ...errorResponses(400, 429) },
        },
      },
      async (request) => {
        await recovery.complete({ ...request.body, sourceIp: request.ip });
        return { ok: true as const };
      },
    );
  };
}
