import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../../testing/engines.js';
import { rawHttps, type HttpResponse } from '../../testing/http.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

/** What every answer carries: the error body, the security headers, no-store and a request ID. */
function assertErrorAnswer(res: HttpResponse, status: number, code: string, sent = '') {
  assert.equal(res.status, status, res.text);
  assert.equal(res.body.error?.code, code, res.text);
  assert.equal(typeof res.body.error.message, 'string');
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.match(String(res.headers['strict-transport-security']), /max-age=31536000; includeSubDomains/);
  assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.match(String(res.headers['x-request-id']), /^[A-Za-z0-9._-]{8,64}$/);
  if (sent) assert.ok(!res.text.includes(sent), `the answer echoes what was sent: ${res.text}`);
}

describe('answers made by the framework, outside the routes', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform(sqlite);
  });
  after(() => t?.close());

  it('answers a path parameter over the length limit with 414 and the error body, without echoing it', async () => {
    const long = 'A'.repeat(101);
    const res = await t.client().get(`/api/v1/devices/${long}`);
    assertErrorAnswer(res, 414, 'request.uri_too_long', long);
  });

  it('answers a malformed percent-escape with 400 and the error body, without echoing it', async () => {
    for (const path of ['/api/v1/devices/%E0%A4%A', '/api/v1/users/%zz%3Cscript%3E']) {
      const res = await t.client().get(path, { headers: { 'x-request-id': 'fuzz-bad-url-1' } });
      assertErrorAnswer(res, 400, 'request.invalid', '%E0%A4%A');
      assert.equal(res.headers['x-request-id'], 'fuzz-bad-url-1');
      assert.ok(!res.text.includes('script'), res.text);
    }
  });

  it('answers an unknown route, a wrong media type and an oversized body with the headers too', async () => {
    const client = t.client();
    assertErrorAnswer(await client.get('/api/v1/nope-<b>marker</b>'), 404, 'resource.not_found', 'marker');
    assertErrorAnswer(await client.request('OPTIONS', '/api/v1/devices'), 404, 'resource.not_found');
    assertErrorAnswer(
      await client.request('POST', '/api/v1/auth/login', { raw: 'x', headers: { 'content-type': 'text/plain' } }),
      415,
      'request.unsupported_media_type',
    );
    assertErrorAnswer(
      await client.request('POST', '/api/v1/auth/login', { raw: '{"a":', headers: { 'content-type': 'application/json' } }),
      400,
      'request.invalid',
    );
    assertErrorAnswer(await client.post('/api/v1/auth/login', { password: 'p'.repeat(2 * 1024 * 1024) }), 413, 'request.too_large');
    assertErrorAnswer(await client.get('/api/v1/users'), 401, 'auth.unauthenticated');
  });

  it('answers a request that is not valid HTTP, and headers over the size limit, with the error body and headers', async () => {
    const [malformed] = await rawHttps(t.server.port, t.ca, ['GET /healthz HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n']);
    assertErrorAnswer(malformed!, 400, 'request.invalid');
    const [huge] = await rawHttps(t.server.port, t.ca, [
      `GET /healthz HTTP/1.1\r\nHost: localhost\r\nx-filler: ${'f'.repeat(20_000)}\r\n\r\n`,
    ]);
    assertErrorAnswer(huge!, 431, 'request.headers_too_large', 'ffff');
  });
});

describe('a draining node', () => {
  it('answers a request that arrives after shutdown began with 503 and the error body, not a bare 503', async () => {
    const t = await startTestPlatform(sqlite);
    let closing: Promise<unknown> | undefined;
    try {
      // The first request is accepted and waits for its body; shutdown begins; the rest of its body
      // and a second, pipelined request then arrive on the same connection.
      const body = JSON.stringify({ organization: t.org, email: 'nobody@example.com', password: 'not the password 1' });
      const head = `POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const [first, second] = await rawHttps(t.server.port, t.ca, [
        head + body.slice(0, 10),
        async () => {
          closing = t.server.app.close();
        },
        body.slice(10) + 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n',
      ]);
      assert.equal(first?.status, 401, first?.text);
      assertErrorAnswer(second!, 503, 'service.unavailable');
      assert.equal(second!.headers.connection, 'close');
    } finally {
      await closing;
      await t.close();
    }
  });
});
