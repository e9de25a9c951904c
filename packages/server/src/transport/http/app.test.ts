import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ENGINES } from '../../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

for (const engine of ENGINES) {
  describe(`HTTPS API [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(engine);
    });
    after(() => t?.close());

    it('serves health and readiness to anyone, and metrics only with the scrape token', async () => {
      const client = t.client();
      assert.deepEqual((await client.get('/healthz')).body, { status: 'ok' });
      assert.deepEqual((await client.get('/readyz')).body, { status: 'ready', checks: { database: true, broker: true } });
      const metrics = await client.get('/metrics');
      assert.equal(metrics.status, 401);
      assert.equal(metrics.body.error.code, 'auth.unauthenticated');
    });

    it('publishes an OpenAPI document listing the routes', async () => {
      const doc = await t.client().get('/api/openapi.json');
      assert.equal(doc.body.openapi, '3.1.0');
      assert.ok(doc.body.paths['/api/v1/auth/login']);
      assert.ok(doc.body.paths['/api/v1/users/{id}']);
    });

    it('sends security headers and a request ID on every answer', async () => {
      const res = await t.client().get('/healthz', { headers: { 'x-request-id': 'trace-12345678' } });
      assert.equal(res.headers['x-request-id'], 'trace-12345678');
      assert.match(String(res.headers['strict-transport-security']), /max-age=31536000/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
    });

    it('refuses TLS 1.1 and accepts TLS 1.2 (checked with openssl s_client)', async () => {
      const caFile = join(t.config.dataDir, 'pki', 'ca.pem');
      // Asynchronous on purpose: the server answering the handshake runs in this process.
      const probe = (flag: string) =>
        new Promise<{ ok: boolean; output: string }>((resolve) => {
          const child = execFile(
            'openssl',
            [
              's_client',
              '-connect',
              `127.0.0.1:${t.server.port}`,
              '-servername',
              'localhost',
              flag,
              '-CAfile',
              caFile,
              '-verify_return_error',
              '-brief',
            ],
            { timeout: 10_000 },
            (error, stdout, stderr) => resolve({ ok: !error, output: stdout + stderr }),
          );
          child.stdin?.end('Q\n');
        });
      const modern = await probe('-tls1_2');
      assert.equal(modern.ok, true, modern.output);
      assert.match(modern.output, /Verification: OK/);
      const legacy = await probe('-tls1_1');
      assert.equal(legacy.ok, false, legacy.output);
    });

    it('answers unknown routes, malformed JSON, wrong media types and oversized bodies with the error body', async () => {
      const client = t.client();
      const missing = await client.get('/api/v1/nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'resource.not_found');
      const malformed = await client.request('POST', '/api/v1/auth/login', {
        raw: '{"organization": ',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, 'request.invalid');
      const text = await client.request('POST', '/api/v1/auth/login', { raw: 'hello', headers: { 'content-type': 'text/plain' } });
      assert.equal(text.status, 415);
      assert.equal(text.body.error.code, 'request.unsupported_media_type');
      const huge = await client.post('/api/v1/auth/login', { organization: 'x', email: 'a@b.co', password: 'p'.repeat(2 * 1024 * 1024) });
      assert.equal(huge.status, 413);
      assert.equal(huge.body.error.code, 'request.too_large');
    });

    it('refuses unknown fields instead of dropping them, naming the field', async () => {
      const res = await t.client().post('/api/v1/auth/login', { organization: 'default', email: 'a@b.co', password: 'x', isAdmin: true });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'request.invalid');
      assert.match(res.body.error.message, /unknown field "isAdmin"/);
    });

    it('requires authentication on API routes', async () => {
      const res = await t.client().get('/api/v1/users');
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'auth.unauthenticated');
      const bad = await t.client().get('/api/v1/users', { token: 'bws_forged' });
      assert.equal(bad.status, 401);
    });

    it('takes the first owner through password change and MFA enrolment to a full session', async () => {
      const { token } = await ownerSession(t);
      const org = await t.client().get('/api/v1/org', { token });
      assert.equal(org.status, 200);
      assert.equal(org.body.slug, t.org);
    });
  });
}
