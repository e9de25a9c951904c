import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { Type } from 'typebox';
import { Metrics } from '../../ops/metrics.js';
import { firstOwner, stepUp } from '../../testing/accounts.js';
import { ENGINES } from '../../testing/engines.js';
import { openApiPath, undeclaredAnswers } from '../../testing/openapi-check.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

describe('the OpenAPI document declares what the routes answer', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform(sqlite);
  });
  after(() => t?.close());

  it('declares the answers the fuzzer found missing: 403 to an API key on an interactive route, 415, 400 on an empty path parameter, 200 of the audit export', async () => {
    const client = t.client();
    const session = await ownerSession(t, client);
    const owner = await firstOwner(t, session);
    await stepUp(t, owner, session.token, client);
    const key = await client.post(
      '/api/v1/me/api-keys',
      { name: 'fuzz', scopes: ['audit:read', 'devices:read'], expiresInDays: 1 },
      { token: session.token },
    );
    assert.equal(key.status, 201, key.text);
    const apiKey = key.body.secret as string;

    const seen = [
      [await client.get('/api/v1/me/sessions', { token: apiKey }), 403],
      [
        await client.request('POST', '/api/v1/devices', {
          raw: 'serial=1',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          token: session.token,
        }),
        415,
      ],
      [await client.get('/api/v1/devices/', { token: session.token }), 400],
      [await client.get('/api/v1/users/', { token: session.token }), 400],
      [await client.get('/api/v1/audit/export', { token: apiKey }), 200],
      [await client.get('/api/v1/audit/export', { token: session.token }), 200],
      [await client.get('/pki/ca.pem'), 200],
      [await client.get('/api/openapi.json'), 200],
    ] as const;
    for (const [res, status] of seen) assert.equal(res.status, status, res.text);
    assert.deepEqual(await undeclaredAnswers(t.server), []);
  });

  it('writes route patterns as the document does', () => {
    assert.equal(openApiPath('/api/v1/devices/:id/commands/:commandId'), '/api/v1/devices/{id}/commands/{commandId}');
    assert.equal(openApiPath('/tuf/:organizationId/targets/*'), '/tuf/{organizationId}/targets/{*}');
  });
});

describe('the check of the OpenAPI document', () => {
  it('reports an answer its route does not declare, and accepts the declared ones', async () => {
    const app = Fastify();
    await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 'check', version: '1' } } });
    const metrics = new Metrics();
    metrics.instrument(app);
    app.get<{ Params: { id: string } }>(
      '/teapots/:id',
      { schema: { response: { 200: Type.Object({ id: Type.String() }) } } },
      async (request, reply) => (request.params.id === 'brew' ? reply.status(418).send({ id: 'brew' }) : { id: request.params.id }),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
      assert.equal((await fetch(`${base}/teapots/earl-grey`)).status, 200);
      assert.deepEqual(await undeclaredAnswers({ app, metrics }), []);
      assert.equal((await fetch(`${base}/teapots/brew`)).status, 418);
      assert.equal((await fetch(`${base}/nowhere`)).status, 404);
      assert.deepEqual(await undeclaredAnswers({ app, metrics }), [
        'GET /teapots/{id}: answered 418 (1×), which it does not declare (it declares 200)',
      ]);
    } finally {
      await app.close();
    }
  });
});
