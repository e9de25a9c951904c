/**
 * Consumer sign-up and email verification, open to anonymous callers and rate-limited per
 * address. Sign-up and a new verification link answer the same whatever exists.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { SignupService } from '../signup.js';
import { errorResponses, Ok, Strict } from '../../transport/http/schemas.js';
import { Email, OrgSlug, Password } from './schemas.js';
import { Accepted, OneTimeToken } from './self-service-schemas.js';
import { publicBaseUrl } from './public-url.js';

const CHECK_YOUR_MAIL = {
  status: 'accepted' as const,
  message: 'Check your email: we sent a link to confirm the address (or, if it already has an account, what to do next). The link expires.',
};

export interface SignupRouteDeps {
  signup: SignupService;
  /** config.http.publicUrl: the base of the links mailed. */
  publicUrl: string | undefined;
  loginRateLimitPerMinute: number;
}

export function signupRoutes(deps: SignupRouteDeps) {
  const { signup } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const limit = { max: deps.loginRateLimitPerMinute, timeWindow: '1 minute' };

    app.post(
      '/auth/signup',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['auth'],
          summary:
            'Create a consumer account; a link to confirm the email address is sent (the answer is the same if the address is taken)',
          body: Strict({ organization: OrgSlug, email: Email, password: Password, name: Type.String({ minLength: 1, maxLength: 200 }) }),
          response: { 202: Accepted, ...errorResponses(400, 429) },
        },
      },
      async (request, reply) => {
        await signup.signup({ ...request.body, sourceIp: request.ip, linkBase: publicBaseUrl(deps.publicUrl, root) });
        return reply.status(202).send(CHECK_YOUR_MAIL);
      },
    );

    app.post(
      '/auth/verify-email',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['auth'],
          summary: 'Confirm an email address with the token from the verification email',
          body: Strict({ token: OneTimeToken }),
          response: { 200: Ok, ...errorResponses(400, 429) },
        },
      },
      async (request) => {
        await signup.verifyEmail({ token: request.body.token, sourceIp: request.ip });
        return { ok: true as const };
      },
    );

    app.post(
      '/auth/verify-email/resend',
      {
        config: { auth: { principal: 'none' }, rateLimit: limit },
        schema: {
          tags: ['auth'],
          summary: 'Send a new email verification link (the answer is the same whether or not the account exists)',
          body: Strict({ organization: OrgSlug, email: Email }),
          response: { 202: Accepted, ...errorResponses(400, 429) },
        },
      },
      async (request, reply) => {
        await signup.resendVerification({ ...request.body, sourceIp: request.ip, linkBase: publicBaseUrl(deps.publicUrl, root) });
        return reply.status(202).send(CHECK_YOUR_MAIL);
      },
    );
  };
}
