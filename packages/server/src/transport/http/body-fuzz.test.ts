/**
 * Every JSON request body the API declares, fuzzed on a real node (SQLite; validation does not
 * depend on the engine): for each route with a body, arbitrary JSON values and objects with the
 * schema's own field names holding arbitrary values, sent over HTTPS as the owner (with a fresh
 * step-up, so that requests reach validation and the handlers). Every answer must be below 500
 * with the error body (RFC 6749's on the OAuth endpoints), and the node must still answer afterwards. Answers the OpenAPI document
 * does not declare fail the run when the platform closes (testing/openapi-check.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { firstOwner, stepUp } from '../../testing/accounts.js';
import { answeredWell, bodyOperations, fuzzBody } from '../../testing/fuzz.js';
import { ENGINES } from '../../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const RUNS_PER_ROUTE = Number(process.env.BULWARK_FUZZ_RUNS ?? 40);
/** Fixed, so CI sees the same bodies every run; set BULWARK_FUZZ_SEED to explore (bench/fuzz.ts explores at length). */
const SEED = Number(process.env.BULWARK_FUZZ_SEED ?? 303645);
const seedOf = (op: { method: string; path: string }) => [...`${op.method} ${op.path}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) | 0, 0);

describe('every JSON request body, fuzzed', () => {
  let t: TestPlatform;
  let token: string;

  before(async () => {
    t = await startTestPlatform(sqlite, {
      http: { port: 0, rateLimitPerMinute: 1_000_000 },
      auth: { loginRateLimitPerMinute: 1_000_000 },
      assessment: { intervalMinutes: 0 },
    });
    const client = t.client();
    const session = await ownerSession(t, client);
    await stepUp(t, await firstOwner(t, session), session.token, client);
    token = session.token;
  });
  after(() => t?.close());

  it('answers arbitrary bodies on every route with a 4xx error body or a success, never a 5xx', async () => {
    const client = t.client();
    const operations = bodyOperations((await client.get('/api/openapi.json')).body);
    assert.ok(operations.length >= 40, `only ${operations.length} routes with a JSON body`);

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    for (const op of operations) {
      const bodies = fc.sample(fuzzBody(op), { numRuns: RUNS_PER_ROUTE, seed: SEED + seedOf(op) });
      await Promise.all(
        bodies.map(async (body) => {
          const res = await client.request(op.method, op.url, {
            raw: JSON.stringify(body) ?? 'null',
            headers: { 'content-type': 'application/json' },
            token,
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (!answeredWell(res.status, res.body))
            failures.push(`${op.method} ${op.path} ${JSON.stringify(body).slice(0, 200)} → ${res.status} ${res.text.slice(0, 200)}`);
        }),
      );
    }
    const summary = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}: ${n}`)
      .join(', ');
    console.log(`fuzzed ${operations.length} routes × ${RUNS_PER_ROUTE} bodies: ${summary}`);
    assert.deepEqual(failures, []);
    // The owner's session held: most bodies reached validation (400), not the door (401).
    assert.ok((statuses.get(400) ?? 0) > (statuses.get(401) ?? 0) * 10, summary);
    assert.equal((await client.get('/healthz')).status, 200);
  });
});
