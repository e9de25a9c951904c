/**
 * The credential an HTTP request presents: a bearer token in the Authorization header, or the
 * session cookie. Who the credential belongs to and what it may do is the accounts domain's
 * question (accounts/routes/authentication.ts); this module only reads it off the request.
 */
import type { FastifyRequest } from 'fastify';
import { AuthenticationError } from '../../errors.js';

export const SESSION_COOKIE = '__Host-bulwark_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface PresentedCredential {
  token: string;
  transport: 'cookie' | 'bearer';
}

/** The request's credential, or null without one; a malformed Authorization header is refused. */
export function presentedCredential(request: FastifyRequest): PresentedCredential | null {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new AuthenticationError('The Authorization header must be "Bearer <token>"');
    return { token: match[1]!, transport: 'bearer' };
  }
  const cookie = request.cookies[SESSION_COOKIE];
  return cookie ? { token: cookie, transport: 'cookie' } : null;
}
