/**
 * The authorization endpoint's reading of a request: a browser navigation (Fetch metadata, or an
 * Accept preferring HTML), a script that asked for JSON, or neither (RFC 6749's answers).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { asksForJson, authorizePage, isNavigation } from './negotiation.js';

const request = (headers: Record<string, string>, url = '/oauth/authorize?client_id=a') => ({ headers, url }) as unknown as FastifyRequest;
const kind = (headers: Record<string, string>) =>
  isNavigation(request(headers)) ? 'navigation' : asksForJson(request(headers)) ? 'json' : 'neither';

describe('the authorization endpoint telling a navigation from a script', () => {
  it('follows Fetch metadata when the browser sends it, whatever Accept says', () => {
    assert.equal(kind({ 'sec-fetch-mode': 'navigate', accept: 'application/json' }), 'navigation');
    assert.equal(isNavigation(request({ 'sec-fetch-mode': 'cors', accept: 'text/html' })), false);
  });

  it('reads Accept by quality, a type or its family, a tie going to JSON', () => {
    const cases: [string, string][] = [
      ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', 'navigation'],
      ['text/html,*/*;q=0.8', 'navigation'],
      ['application/json', 'json'],
      ['Application/JSON', 'json'],
      ['text/html, application/json', 'json'],
      ['application/json;q=0.5, text/html;q=0.9', 'navigation'],
      ['text/html;q=0.5, application/json;q=0.9', 'json'],
      ['text/*;q=0.9, application/json;q=0.5', 'navigation'],
      ['application/*, text/html;q=0.8', 'json'],
      ['text/html;q=0, application/json;q=0', 'neither'],
      ['*/*', 'neither'],
      ['image/png', 'neither'],
      ['', 'neither'],
    ];
    for (const [accept, expected] of cases) assert.equal(kind({ accept }), expected, accept);
    assert.equal(kind({}), 'neither', 'no Accept header');
  });

  it('sends the hosted page the request’s own query, on this origin', () => {
    assert.equal(
      authorizePage(request({}, '/oauth/authorize?redirect_uri=%2F%2Fevil.example%2F')),
      '/app/authorize?redirect_uri=%2F%2Fevil.example%2F',
    );
    assert.equal(authorizePage(request({}, '/oauth/authorize')), '/app/authorize');
  });
});
