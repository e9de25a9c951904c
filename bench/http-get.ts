/**
 * Authenticated read latency over HTTPS: GET /api/v1/org with a bearer session token at 50
 * connections, each round beside two baselines measured in the same run: a bare node:https server
 * with the same certificate answering a tiny JSON (the floor for TLS and HTTP in Node), and the
 * platform's unauthenticated GET /healthz (the floor for the API stack: hooks, headers, metrics).
 * The difference to /healthz is the authentication door (token hash, session and user lookups)
 * and the organization query.
 *
 *   node --conditions=source --import tsx bench/http-get.ts [--pg] [-c 50] [--duration 5] [--rounds 3]
 */
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { loadServerTls } from '../packages/server/src/pki/ca.js';
import { benchFlags, load, machine, median, request, table, type LoadResult } from './support/measure.js';
import { BENCH_PASSWORD, createOperators, startBenchPlatform } from './support/platform.js';

const AIM_P99_MS = 10;

const flags = benchFlags({ connections: 50 });
const bench = await startBenchPlatform({ postgres: flags.pg });
const tls = loadServerTls(bench.dataDir, bench.platform.box);
const bare = https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  response.end('{"status":"ok"}');
});
try {
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  const bareUrl = `https://localhost:${(bare.address() as AddressInfo).port}/`;

  const [email] = await createOperators(bench, 1);
  const login = await request(`${bench.baseUrl}/api/v1/auth/login`, bench.ca, {
    method: 'POST',
    body: { organization: bench.org, email, password: BENCH_PASSWORD },
  });
  if (login.body?.status !== 'ok') throw new Error(`bench login failed: ${login.status} ${JSON.stringify(login.body)}`);
  const token = String(login.body.token);

  const targets: { name: string; url: string; token?: string }[] = [
    { name: 'bare node:https', url: bareUrl },
    { name: 'GET /healthz', url: `${bench.baseUrl}/healthz` },
    { name: 'GET /api/v1/org (bearer)', url: `${bench.baseUrl}/api/v1/org`, token },
  ];
  for (const target of targets) {
    const probe = await request(target.url, bench.ca, target.token ? { token: target.token } : {});
    if (probe.status !== 200) throw new Error(`${target.name} answered ${probe.status} ${JSON.stringify(probe.body)}`);
  }

  console.log(
    `Bulwark authenticated GET benchmark: ${bench.engine}, ${flags.connections} connections, ${flags.rounds} rounds of ${flags.duration} s; ${machine()}`,
  );
  console.log('same certificate (ECDSA P-256) on every server; load from autocannon in a worker thread (latency resolution 1 ms)');

  const results: LoadResult[][] = targets.map(() => []);
  const rows: (string | number)[][] = [];
  const row = (name: string, round: string, r: LoadResult, bareRps: number, healthRps: number) => [
    name,
    round,
    r.rps,
    r.p50,
    r.p99,
    String(r.failures),
    r.rps / bareRps,
    r.rps / healthRps,
  ];
  for (let round = 1; round <= flags.rounds; round++) {
    for (const [i, target] of targets.entries()) {
      results[i]!.push(
        await load({
          url: target.url,
          ca: bench.ca,
          connections: flags.connections,
          duration: flags.duration,
          headers: target.token ? { authorization: `Bearer ${target.token}` } : {},
        }),
      );
    }
    const latest = results.map((r) => r.at(-1)!);
    targets.forEach((target, i) => rows.push(row(target.name, String(round), latest[i]!, latest[0]!.rps, latest[1]!.rps)));
  }
  const medians = results.map((r) => ({
    rps: median(r.map((x) => x.rps)),
    p50: median(r.map((x) => x.p50)),
    p99: median(r.map((x) => x.p99)),
    failures: median(r.map((x) => x.failures)),
  }));
  targets.forEach((target, i) => rows.push(row(target.name, 'median', medians[i]!, medians[0]!.rps, medians[1]!.rps)));
  table(['target', 'round', 'req/s', 'p50 ms', 'p99 ms', 'failed', '÷ bare req/s', '÷ healthz req/s'], rows);

  const p99 = medians[2]!.p99;
  console.log(
    `p99 of the authenticated GET ÷ bare p99: ${(p99 / medians[0]!.p99).toFixed(2)}; ÷ /healthz p99: ${(p99 / medians[1]!.p99).toFixed(2)}`,
  );
  console.log(`aim p99 ≤ ${AIM_P99_MS} ms for the authenticated GET: ${p99 <= AIM_P99_MS ? 'met' : 'NOT met'} (median p99 ${p99} ms)`);
} finally {
  bare.close();
  await bench.close();
}
