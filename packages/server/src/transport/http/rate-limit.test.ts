/**
 * The deployment-wide HTTP rate limit (http.rateLimitPerMinute, per client address) counts every
 * request, including those authentication refuses: it once ran after the authentication hook, so a
 * flood of missing or wrong credentials was never counted. Health checks stay outside it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../../testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const LIMIT = 5;

describe('the HTTP rate limit [sqlite]', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform(sqlite, { http: { port: 0, rateLimitPerMinute: LIMIT } });
  });
  after(async () => {
    await t?.close();
  });

  it('counts requests that authentication refuses: wrong credentials past the limit get 429, whatever the credential', async () => {
    const client = t.client();
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 3; i++) {
      const res = await client.get('/api/v1/me', i % 2 === 0 ? {} : { token: `bws_forged${i}` });
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [...Array<number>(LIMIT).fill(401), 429, 429, 429]);
    const refused = await client.get('/api/v1/devices', { token: 'bws_another' });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'request.rate_limited');
    assert.ok(Number(refused.headers['retry-after']) > 0, 'says when to try again');
  });

  it('leaves health checks outside the limit (load balancers poll them)', async () => {
    const client = t.client();
    for (let i = 0; i < LIMIT + 2; i++) {
      const health = await client.get('/healthz');
      assert.equal(health.status, 200);
    }
  });
});
