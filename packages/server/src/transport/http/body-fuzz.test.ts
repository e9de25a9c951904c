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
import { ENGINES } from '../../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const RUNS_PER_ROUTE = Number(process.env.BULWARK_FUZZ_RUNS ?? 40);
/** Fixed, so CI sees the same bodies every run; set BULWARK_FUZZ_SEED to explore (bench/fuzz.ts explores at length). */
const SEED = Number(process.env.BULWARK_FUZZ_SEED ?? 303645);
const seedOf = (op: { method: string; path: string }) => [...`${op.method} ${op.path}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) | 0, 0);
/** Routes that would end the owner's own session or account: the fuzz needs both to go on. */
const SPARED = [/\/auth\/logout$/, /^\/api\/v1\/me$/, /\/me\/sessions/, /\/me\/password$/, /\/me\/mfa/];

interface Operation {
  method: string;
  path: string;
  fields: string[];
}

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
    const spec = (await client.get('/api/openapi.json')).body as {
      paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: object } }> } }>>;
    };
    const operations: Operation[] = [];
    for (const [path, methods] of Object.entries(spec.paths))
      for (const [method, op] of Object.entries(methods)) {
        const json = op.requestBody?.content?.['application/json'];
        if (!json || SPARED.some((r) => r.test(path))) continue;
        operations.push({ method: method.toUpperCase(), path, fields: Object.keys(json.schema?.properties ?? {}) });
      }
    assert.ok(operations.length >= 40, `only ${operations.length} routes with a JSON body`);

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    for (const op of operations) {
      const url = op.path.replace(/\{[^}]+\}/g, () => '5f0c2d4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f');
      const shaped = fc.dictionary(fc.constantFrom(...(op.fields.length ? op.fields : ['x'])), fc.jsonValue({ maxDepth: 3 }), {
        maxKeys: 6,
      });
      const bodies = fc.sample(fc.oneof(fc.jsonValue({ maxDepth: 4 }), shaped), { numRuns: RUNS_PER_ROUTE, seed: SEED + seedOf(op) });
      await Promise.all(
        bodies.map(async (body) => {
          const res = await client.request(op.method, url, {
            raw: JSON.stringify(body) ?? 'null',
            headers: { 'content-type': 'application/json' },
            token,
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          // The error body, or on the OAuth endpoints RFC 6749's ({error, error_description}) with our code.
          const bodyOk =
            res.status < 400 ||
            typeof res.body?.error?.code === 'string' ||
            (typeof res.body?.error === 'string' && typeof res.body?.code === 'string');
          if (res.status >= 500 || !bodyOk)
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
