/**
 * Who is asking the authorization endpoint: a browser navigating to it (the system browser an app
 * opened, a link followed), which is sent to the hosted pages of the companion app, or a script
 * that asked for JSON (the hosted page itself), which cannot read a cross-origin 302's Location
 * and so gets `{ location }` instead. Anything else keeps the RFC 6749 answers (302, JSON errors).
 */
import type { FastifyRequest } from 'fastify';
import { Negotiator } from '@fastify/accept-negotiator';

/** The hosted page that signs the consumer in and asks for consent (packages/web/src/app/pages/Authorize.tsx). */
export const AUTHORIZE_PAGE = '/app/authorize';

/**
 * The two media types told apart, each with its family: the Accept header's highest quality among
 * them wins, and a tie goes to JSON's side (listed first). The any-type wildcard names neither, so a
 * request that accepts anything is neither a navigation nor a script that asked for JSON. Only the
 * q parameter is read: a range with another parameter (`application/json; charset=utf-8`) counts for
 * nothing. No cache: the header is the client's to choose, and a cache would grow with each new one.
 */
const JSON_OR_HTML = new Negotiator({ supportedValues: ['application/json', 'application/*', 'text/html', 'text/*'] });

/** What the Accept header prefers of JSON and HTML; null when it names neither (or both at q=0). */
function preferred(request: FastifyRequest): 'json' | 'html' | null {
  // Media types are case-insensitive; the negotiator compares as written.
  const type = JSON_OR_HTML.negotiate((request.headers.accept ?? '').toLowerCase());
  if (type === null) return null;
  return type.startsWith('text/') ? 'html' : 'json';
}

/** A top-level browser navigation: Fetch metadata says so, or (older browsers) Accept prefers HTML to JSON. */
export function isNavigation(request: FastifyRequest): boolean {
  const mode = request.headers['sec-fetch-mode'];
  if (typeof mode === 'string') return mode === 'navigate';
  return preferred(request) === 'html';
}

/** A script that asked for JSON (`Accept: application/json`, preferred to HTML). */
export function asksForJson(request: FastifyRequest): boolean {
  return preferred(request) === 'json';
}

/** The hosted page with the authorization request's own query, on this origin: never anywhere the query names. */
export function authorizePage(request: FastifyRequest): string {
  const at = request.url.indexOf('?');
  return at === -1 ? AUTHORIZE_PAGE : `${AUTHORIZE_PAGE}${request.url.slice(at)}`;
}
