/**
 * The set-up most API test suites share, in one call for their `before` hook (as Kysely's
 * `initTest(ctx, dialect)`): a platform node on `engine` with the per-source sign-in limit lifted
 * (these suites sign in many times; the limit has its own test in accounts/login.test.ts), and its
 * first owner signed fully in (one-time password changed, TOTP enrolled) on one client.
 *
 *   before(async () => ({ t, owner, token } = await startOwnerPlatform(engine)));
 *   after(() => t?.close());
 */
import { firstOwner, type TestUser } from './accounts.js';
import type { EngineUnderTest } from './engines.js';
import type { HttpClient } from './http.js';
import { ownerSession, startTestPlatform, type TestPlatform } from './server.js';

export interface OwnerPlatform {
  t: TestPlatform;
  /** The client the owner signed in with (it keeps no cookies). */
  client: HttpClient;
  /** The first owner, with the password and TOTP secret the sign-in left them with. */
  owner: TestUser;
  /** The owner's bearer token. */
  token: string;
}

/** Sign-ins a suite may make per minute from one address: enough never to be the limit under test. */
const UNLIMITED_LOGINS = { loginRateLimitPerMinute: 10_000 };

export async function startOwnerPlatform(engine: EngineUnderTest, configOverrides: Record<string, unknown> = {}): Promise<OwnerPlatform> {
  const auth = { ...UNLIMITED_LOGINS, ...(configOverrides.auth as Record<string, unknown> | undefined) };
  const t = await startTestPlatform(engine, { ...configOverrides, auth });
  const client = t.client();
  const session = await ownerSession(t, client);
  return { t, client, owner: await firstOwner(t, session), token: session.token };
}
