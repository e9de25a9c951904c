/**
 * Sign-in throughput over HTTPS. Operators whose password sign-in is 'ok' at once (role operator:
 * no MFA required, no password change pending) sign in at concurrency C for D seconds, each round
 * beside the bare argon2id verification rate with the same parameters, measured in the same run.
 * argon2id is the work a login must do, so the ratio says what the rest of the path (TLS, HTTP,
 * queries, session, audit entry) costs on top of it.
 *
 *   node --conditions=source --import tsx bench/login.ts [--pg] [--users 20] [-c 8] [--duration 5] [--rounds 3]
 */
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../packages/server/src/accounts/passwords.js';
import { benchFlags, load, machine, median, request, table, type LoadResult } from './support/measure.js';
import { BENCH_PASSWORD, createOperators, startBenchPlatform } from './support/platform.js';

const AIM_LOGINS_PER_SECOND = 150;

interface VerifyRate {
  perSecond: number;
  msPerVerify: number;
}

/** Bare @node-rs/argon2 verifications for `seconds`, `concurrency` at a time (on libuv's thread pool). */
async function bareVerify(stored: string, concurrency: number, seconds: number): Promise<VerifyRate> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let count = 0;
  let busy = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (!(await verify(stored, BENCH_PASSWORD))) throw new Error('argon2 verify refused the right password');
        busy += performance.now() - t;
        count++;
      }
    }),
  );
  return { perSecond: count / ((performance.now() - started) / 1000), msPerVerify: busy / count };
}

const flags = benchFlags({ connections: 8 });
const bench = await startBenchPlatform({ postgres: flags.pg });
try {
  const emails = await createOperators(bench, flags.users);
  const credentials = (email: string) => ({ organization: bench.org, email, password: BENCH_PASSWORD });
  const probe = await request(`${bench.baseUrl}/api/v1/auth/login`, bench.ca, { method: 'POST', body: credentials(emails[0]!) });
  if (probe.status !== 200 || probe.body?.status !== 'ok')
    throw new Error(`a bench login must be 'ok' at once, got ${probe.status} ${JSON.stringify(probe.body)}`);
  const stored = await hash(BENCH_PASSWORD, ARGON2_PARAMS);

  console.log(
    `Bulwark login benchmark: ${bench.engine}, ${flags.users} operators, concurrency ${flags.connections}, ${flags.rounds} rounds of ${flags.duration} s; ${machine()}`,
  );
  console.log(
    `argon2id m=${ARGON2_PARAMS.memoryCost} KiB t=${ARGON2_PARAMS.timeCost} p=${ARGON2_PARAMS.parallelism}; libuv thread pool ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; load from autocannon in a worker thread`,
  );

  const rows: (string | number)[][] = [];
  const logins: LoadResult[] = [];
  const single: VerifyRate[] = [];
  const concurrent: VerifyRate[] = [];
  for (let round = 1; round <= flags.rounds; round++) {
    single.push(await bareVerify(stored, 1, flags.duration));
    concurrent.push(await bareVerify(stored, flags.connections, flags.duration));
    logins.push(
      await load({
        url: bench.baseUrl,
        ca: bench.ca,
        connections: flags.connections,
        duration: flags.duration,
        requests: emails.map((email) => ({
          method: 'POST',
          path: '/api/v1/auth/login',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(credentials(email)),
        })),
      }),
    );
    const [l, s, c] = [logins.at(-1)!, single.at(-1)!, concurrent.at(-1)!];
    rows.push([
      String(round),
      l.rps,
      l.p50,
      l.p99,
      String(l.failures),
      s.perSecond,
      s.msPerVerify,
      c.perSecond,
      l.rps / c.perSecond,
      l.rps / s.perSecond,
    ]);
  }
  const m = {
    rps: median(logins.map((l) => l.rps)),
    single: median(single.map((s) => s.perSecond)),
    concurrent: median(concurrent.map((c) => c.perSecond)),
  };
  rows.push([
    'median',
    m.rps,
    median(logins.map((l) => l.p50)),
    median(logins.map((l) => l.p99)),
    String(median(logins.map((l) => l.failures))),
    m.single,
    median(single.map((s) => s.msPerVerify)),
    m.concurrent,
    m.rps / m.concurrent,
    m.rps / m.single,
  ]);
  table(
    [
      'round',
      'logins/s',
      'p50 ms',
      'p99 ms',
      'failed',
      'bare verify/s 1 thread',
      'ms/verify',
      `bare verify/s @${flags.connections}`,
      `logins ÷ verify@${flags.connections}`,
      'logins ÷ verify 1 thread',
    ],
    rows,
  );

  const audit = await bench.platform.audit.verify();
  console.log(
    `audit chain after the run: ${audit.entries} entries, ${audit.checkpoints} signed checkpoints, ${audit.ok ? 'intact' : `BROKEN (${audit.problems.length} problems)`}`,
  );
  console.log(
    `aim ≥ ${AIM_LOGINS_PER_SECOND} logins/s on 2 cores: ${m.rps >= AIM_LOGINS_PER_SECOND ? 'met' : 'NOT met'} (median ${m.rps.toFixed(0)}/s; bare argon2id verifications at the same concurrency in this run: ${m.concurrent.toFixed(0)}/s)`,
  );
} finally {
  await bench.close();
}
