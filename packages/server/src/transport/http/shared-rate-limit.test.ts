/**
 * HTTP rate limits across the nodes (and workers) of one deployment: with Redis, a client's
 * requests are counted together whichever node answers them, so two nodes do not give it the
 * limit twice; another deployment on the same Redis keeps its own counts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_URL } from '../../testing/redis.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';
import { POSTGRES, startTwoNodes, twoNodesSkip, type SecondNode } from '../../testing/two-nodes.js';

const skip = await twoNodesSkip();
const LIMIT = 10;

describe('HTTP rate limits shared by two nodes through Redis', { skip }, () => {
  let t: TestPlatform;
  let other: TestPlatform;
  let node2: SecondNode;
  const http = { port: 0, rateLimitPerMinute: LIMIT };

  before(async () => {
    ({ t, node2 } = await startTwoNodes({ http }));
    other = await startTestPlatform(POSTGRES, { http, mqtt: { port: 0, redisUrl: REDIS_URL } });
  });
  after(async () => {
    await node2?.close();
    await other?.close();
    await t?.close();
  });

  it('counts a client once across both nodes: six requests to each, the last two refused (429)', async () => {
    const first = t.client();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await first.get('/api/v1/me')).status);
      statuses.push((await node2.api.get('/api/v1/me')).status);
    }
    // Without a credential: 401 within the limit, 429 past it, whichever node answers.
    assert.deepEqual(statuses, [...Array<number>(LIMIT).fill(401), 429, 429]);
    const refused = await node2.api.get('/api/v1/me');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'request.rate_limited');
  });

  it('keeps another deployment’s counts apart on the same Redis', async () => {
    const res = await other.client().get('/api/v1/me');
    assert.equal(res.status, 401, 'a fresh deployment is not limited by the first one’s counts');
  });
});
