/**
 * Who is asking the authorization endpoint: a browser navigating to it (the system browser an app
 * opened, a link followed), which is sent to the hosted pages of the companion app, or a script
 * that asked for JSON (the hosted page itself), which cannot read a cross-origin 302's Location
 * and so gets `{ location }` instead. Anything else keeps the RFC 6749 answers (302, JSON errors).
 */
import type { FastifyRequest } from 'fastify';

/** The hosted page that signs the consumer in and asks for consent (packages/web/src/app/pages/Authorize.tsx). */
export const AUTHORIZE_PAGE = '/app/authorize';

/** The quality the Accept header gives `type` (0 when it names neither the type nor its family). */
function quality(accept: string, type: string): number {
  const family = `${type.split('/')[0]}/*`;
  let best = 0;
  for (const range of accept.split(',')) {
    const [media, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (media !== type && media !== family) continue;
    const q = params.find((p) => p.startsWith('q='));
    const value = q ? Number(q.slice(2)) : 1;
    if (Number.isFinite(value)) best = Math.max(best, value);
  }
  return best;
}

/** A top-level browser navigation: Fetch metadata says so, or (older browsers) Accept prefers HTML to JSON. */
export function isNavigation(request: FastifyRequest): boolean {
  const mode = request.headers['sec-fetch-mode'];
  if (typeof mode === 'string') return mode === 'navigate';
  const accept = request.headers.accept ?? '';
  return quality(accept, 'text/html') > quality(accept, 'application/json');
}

/** A script that asked for JSON (`Accept: application/json`, preferred to HTML). */
export function asksForJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  const json = quality(accept, 'application/json');
  return json > 0 && json >= quality(accept, 'text/html');
}

/** The hosted page with the authorization request's own query, on this origin: never anywhere the query names. */
export function authorizePage(request: FastifyRequest): string {
  const at = request.url.indexOf('?');
  return at === -1 ? AUTHORIZE_PAGE : `${AUTHORIZE_PAGE}${request.url.slice(at)}`;
}
