/**
 * Starts a real platform node for a test: `bulwark init` on a fresh data directory and database
 * (SQLite file or its own PostgreSQL database), then the HTTPS API on an ephemeral port with the
 * generated CA. Helpers sign the first owner all the way in (forced password change, MFA enrolment).
 * Closing it checks that the OpenAPI document declares every answer the node gave (openapi-check.ts).
 */
import { readFileSync } from 'node:fs';
import { generate } from 'otplib';
import { ManualClock } from '../clock.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { startServer, type RunningServer } from '../runner/server.js';
import { openPlatform, type Platform } from '../platform.js';
import type { EngineUnderTest, TestDatabase } from './engines.js';
import { HttpClient } from './http.js';
import { undeclaredAnswers } from './openapi-check.js';

export interface TestPlatform {
  platform: Platform;
  server: RunningServer;
  config: Config;
  clock: ManualClock;
  ca: string;
  database: TestDatabase;
  org: string;
  owner: { email: string; oneTimePassword: string };
  client(cookies?: boolean): HttpClient;
  close(): Promise<void>;
}

export const STRONG_PASSWORD = 'correct horse battery staple 7';

/**
 * The test's overrides merged into the harness's section by section: `{ http: { trustProxy: true } }`
 * keeps the ephemeral port. Replacing the whole section put the node on the default port 8443, where
 * two test processes running at once collided (EADDRINUSE).
 */
function withSections(base: Record<string, Record<string, unknown>>, overrides: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const section = base[key];
    const isSection = value !== null && typeof value === 'object' && !Array.isArray(value);
    merged[key] = section && isSection ? { ...section, ...value } : value;
  }
  return merged;
}

export async function startTestPlatform(
  engine: EngineUnderTest,
  configOverrides: Record<string, unknown> = {},
  logStream?: NodeJS.WritableStream,
): Promise<TestPlatform> {
  const database = await engine.create();
  const clock = new ManualClock(Date.now());
  const config = loadConfig({
    dataDir: database.dataDir,
    env: {},
    overrides: withSections(
      {
        database: { url: database.url, poolSize: 5 },
        http: { port: 0 },
        mqtt: { port: 0 },
        log: { level: logStream ? 'trace' : 'silent' },
      },
      configOverrides,
    ) as never,
  });
  const init = await initialize(config, DEFAULT_INIT, { database, clock, env: {} });
  const platform = await openPlatform(config, { database, clock, env: {}, insecureLoopbackIdentityProviders: true });
  const server = await startServer(platform, {
    port: config.http.port,
    host: '127.0.0.1',
    ...(logStream ? { logStream } : { logger: false }),
  });
  const ca = readFileSync(init.caCertPath, 'utf8');
  const clients: HttpClient[] = [];
  return {
    platform,
    server,
    config,
    clock,
    ca,
    database,
    org: init.organization.slug,
    owner: init.owner!,
    client(cookies = false) {
      const client = new HttpClient(`https://localhost:${server.port}`, ca, cookies);
      clients.push(client);
      return client;
    },
    async close() {
      const undeclared = await undeclaredAnswers(server);
      for (const c of clients) c.close();
      await server.close();
      await database.close();
      if (undeclared.length > 0)
        throw new Error(`The OpenAPI document misses answers the tests saw; declare them on their routes:\n  ${undeclared.join('\n  ')}`);
    },
  };
}

/** The current TOTP code for a secret at the platform clock's time. */
export function totp(secret: string, clock: ManualClock): Promise<string> {
  return generate({ secret, epoch: Math.floor(clock.now() / 1000) });
}

/**
 * Signs the first owner fully in: one-time password, forced change, TOTP enrolment.
 * Returns the bearer token, the new password and the TOTP secret.
 */
export async function ownerSession(t: TestPlatform, client = t.client()): Promise<{ token: string; password: string; secret: string }> {
  const session = await firstSignIn(client, t.org, t.owner, () => t.clock.now());
  t.clock.advance(30_000);
  return session;
}

/**
 * The owner's first sign-in through the API, as `bulwark init` leaves it: the one-time password
 * changed to STRONG_PASSWORD and TOTP enrolled (codes at `now`); a full session.
 */
export async function firstSignIn(
  client: HttpClient,
  org: string,
  owner: { email: string; oneTimePassword: string },
  now: () => number,
): Promise<{ token: string; password: string; secret: string }> {
  const first = await client.post('/api/v1/auth/login', { organization: org, email: owner.email, password: owner.oneTimePassword });
  if (first.body.status !== 'password_change_required') throw new Error(`unexpected first login: ${first.text}`);
  const changed = await client.post(
    '/api/v1/me/password',
    { currentPassword: owner.oneTimePassword, newPassword: STRONG_PASSWORD },
    { token: first.body.token },
  );
  if (changed.body.status !== 'mfa_enrollment_required') throw new Error(`unexpected after password change: ${changed.text}`);
  const enrol = await client.post('/api/v1/me/mfa/totp', undefined, { token: changed.body.token });
  const confirm = await client.post(
    '/api/v1/me/mfa/totp/confirm',
    { code: await generate({ secret: enrol.body.secret, epoch: Math.floor(now() / 1000) }) },
    { token: changed.body.token },
  );
  if (confirm.body.session?.status !== 'ok') throw new Error(`unexpected after MFA enrolment: ${confirm.text}`);
  return { token: confirm.body.session.token, password: STRONG_PASSWORD, secret: enrol.body.secret };
}

/** Creates an operator through the API and signs them in fully (password change, MFA if the role needs it). */
export async function operatorSession(
  t: TestPlatform,
  ownerToken: string,
  email: string,
  role: string,
  client = t.client(),
): Promise<{ token: string; userId: string; password: string; secret: string | null }> {
  const created = await client.post('/api/v1/users', { email, name: email.split('@')[0], role }, { token: ownerToken });
  if (created.status !== 201) throw new Error(`could not create ${email}: ${created.text}`);
  const first = await client.post('/api/v1/auth/login', { organization: t.org, email, password: created.body.oneTimePassword });
  const changed = await client.post(
    '/api/v1/me/password',
    { currentPassword: created.body.oneTimePassword, newPassword: STRONG_PASSWORD },
    { token: first.body.token },
  );
  if (changed.body.status === 'ok')
    return { token: changed.body.token, userId: created.body.user.id, password: STRONG_PASSWORD, secret: null };
  const enrol = await client.post('/api/v1/me/mfa/totp', undefined, { token: changed.body.token });
  const confirm = await client.post(
    '/api/v1/me/mfa/totp/confirm',
    { code: await totp(enrol.body.secret, t.clock) },
    { token: changed.body.token },
  );
  t.clock.advance(30_000);
  return { token: confirm.body.session.token, userId: created.body.user.id, password: STRONG_PASSWORD, secret: enrol.body.secret };
}
