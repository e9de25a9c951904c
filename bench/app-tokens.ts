/**
 * Companion-app access-token verification per second, in one process on one thread, beside bare
 * `jose` jwtVerify of the same token with the same public key measured in the same run:
 *   - bare jose: jwtVerify with the algorithm, issuer and audience pinned;
 *   - verifier: AccessTokens.verify (header checks, kid lookup in the key cache, jwtVerify with
 *     typ, issuer, audience, exp/nbf pinned, claim checks);
 *   - authenticator: what each API request does with a Bearer JWT (the verifier plus the database
 *     checks that the grant is live, the client active and the user an active consumer).
 * The ratios say what the pinning costs over the signature check, and what the revocation
 * checks cost on top.
 *
 *   node --conditions=source --import tsx bench/app-tokens.ts [--pg] [-c 8] [--duration 5] [--rounds 3]
 */
import { createPublicKey } from 'node:crypto';
import { jwtVerify } from 'jose';
import { newUserRow } from '../packages/server/src/accounts/store.js';
import type { Actor } from '../packages/server/src/accounts/roles.js';
import { pkce } from '../packages/server/src/testing/apps.js';
import { benchFlags, machine, median, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

/** Verifications per second, `concurrency` at a time (the database checks wait on I/O; the signature check does not). */
async function rate(seconds: number, concurrency: number, once: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        for (let i = 0; i < 20; i++) await once();
        count += 20;
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

const flags = benchFlags({ connections: 8 });
const bench = await startBenchPlatform({ postgres: flags.pg });
try {
  const { platform } = bench;
  const app = await platform.apps.clients.create(bench.admin, {
    name: 'Bench app',
    redirectUris: ['com.bench.app:/cb'],
    scopes: ['account', 'devices:read'],
    firstParty: true,
  });
  const now = platform.clock.now();
  const user = newUserRow({
    organizationId: bench.admin.organizationId,
    kind: 'consumer',
    email: 'bench-consumer@example.com',
    name: 'Bench',
    role: null,
    passwordHash: null,
    emailVerifiedAt: now,
    mustChangePassword: false,
    now,
  });
  await platform.accounts.store.insertUser(user);
  const consumer: Actor = {
    kind: 'consumer',
    userId: user.id,
    organizationId: user.organization_id,
    role: null,
    permissions: new Set(),
    via: 'session',
    sessionId: null,
    apiKeyId: null,
    stepUpAt: null,
    sourceIp: '127.0.0.1',
  };
  const { verifier, challenge } = pkce();
  const outcome = await platform.apps.authorization.authorize(consumer, {
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: 'com.bench.app:/cb',
    scope: 'account devices:read',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  if (outcome.kind !== 'redirect') throw new Error('a first-party client needs no consent');
  const code = new URL(outcome.location).searchParams.get('code')!;
  const tokens = await platform.apps.grants.token(
    { grant_type: 'authorization_code', client_id: app.clientId, code, redirect_uri: 'com.bench.app:/cb', code_verifier: verifier },
    '127.0.0.1',
  );
  const token = tokens.access_token;
  const { issuer, audience } = platform.apps.tokens.config;
  const jwk = (await platform.apps.keys.jwks()).keys[0]!;
  const publicKey = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });

  const bare = () => jwtVerify(token, publicKey, { algorithms: ['EdDSA'], issuer, audience });
  const verify = () => platform.apps.tokens.verify(token);
  const authenticate = async () => {
    const result = await platform.accounts.authenticator.authenticate(token, '127.0.0.1', 'bearer');
    if (result?.actor.via !== 'app') throw new Error('the token did not authenticate');
  };
  await verify();
  await authenticate();

  console.log(
    `Bulwark app access-token verification: ${bench.engine}, one thread, ${flags.connections} at a time, ${flags.rounds} rounds of ${flags.duration} s per path; ${machine()}`,
  );
  const rows: (string | number)[][] = [];
  const results = { bare: [] as number[], verifier: [] as number[], authenticator: [] as number[] };
  for (let round = 1; round <= flags.rounds; round++) {
    const b = await rate(flags.duration, flags.connections, bare);
    const v = await rate(flags.duration, flags.connections, verify);
    const a = await rate(flags.duration, flags.connections, authenticate);
    results.bare.push(b);
    results.verifier.push(v);
    results.authenticator.push(a);
    rows.push([`round ${round}`, b, v, a, v / b, a / b]);
  }
  const [b, v, a] = [median(results.bare), median(results.verifier), median(results.authenticator)];
  rows.push(['median', b, v, a, v / b, a / b]);
  table(['', 'bare jose/s', 'verifier/s', 'authenticator/s', 'verifier÷bare', 'authenticator÷bare'], rows);
} finally {
  await bench.close();
}
