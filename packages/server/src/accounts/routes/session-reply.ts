/**
 * Hands a newly issued session to the client: as the __Host- cookie plus a CSRF token for the
 * console, or as a bearer token in the body for API clients.
 */
import type { FastifyReply } from 'fastify';
import type { LoginOutcome } from '../login.js';
import { toUserView } from '../service.js';
import { SESSION_COOKIE } from '../../transport/http/auth.js';

export function replyWithSession(reply: FastifyReply, outcome: LoginOutcome, now: number) {
  const { issued } = outcome;
  const base = {
    status: outcome.status,
    expiresAt: new Date(issued.session.expires_at).toISOString(),
    user: toUserView(outcome.user, now),
    ...(outcome.factors ? { mfaFactors: outcome.factors } : {}),
  };
  if (issued.session.transport === 'cookie') {
    reply.setCookie(SESSION_COOKIE, issued.token, {
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      expires: new Date(issued.session.expires_at),
    });
    return { ...base, csrfToken: issued.csrfToken! };
  }
  return { ...base, token: issued.token };
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
}
