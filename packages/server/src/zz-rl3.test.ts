import { it } from 'node:test';
import { Type } from 'typebox';
import { buildHttpApp } from './transport/http/app.js';
import { readFileSync } from 'node:fs';
it('rl', async () => {
  const tls = { cert: readFileSync('/tmp/c.pem', 'utf8'), key: readFileSync('/tmp/k.pem', 'utf8') };
  const app = await buildHttpApp({
    tls, http: { bodyLimitBytes: 1000, rateLimitPerMinute: 2, trustProxy: false }, logLevel: 'silent', logger: false,
    metrics: { instrument() {} },
    routes: async (a) => { a.get('/x', { schema: { response: { 200: Type.Object({ ok: Type.Number() }) } } }, async () => ({ ok: 1 })); },
  });
  const s: number[] = [];
  for (let i = 0; i < 4; i++) { const r = await app.inject('/x'); s.push(r.statusCode); }
  console.log('statuses', s.join(','), JSON.stringify(Object.keys((await app.inject('/x')).headers)));
  await app.close();
});
