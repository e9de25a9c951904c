/**
 * Account helpers for the attack tests: operators created through the service with a known
 * password (as `bulwark admin` would), consumers inserted as a verified sign-up would leave
 * them, sign-in through the HTTPS API including the second factor, the console's cookie sign-in,
 * and TOTP codes that are certainly wrong.
 */
import { generate } from 'otplib';
import { hashPassword } from '../accounts/passwords.js';
import { cliActor, type OperatorRole } from '../accounts/roles.js';
import { newUserRow } from '../accounts/store.js';
import type { HttpClient, HttpResponse } from './http.js';
import { STRONG_PASSWORD, totp, type TestPlatform } from './server.js';

export interface TestUser {
  id: string;
  organization: string;
  email: string;
  password: string;
  /** The TOTP secret, once MFA is enrolled. */
  secret: string | null;
}

export async function organizationId(t: TestPlatform, slug = t.org): Promise<string> {
  const org = await t.platform.accounts.store.organizationBySlug(slug);
  if (!org) throw new Error(`no organization ${slug}`);
  return org.id;
}

/** An operator with a chosen password (no forced change), created by the platform admin. */
export async function createOperator(
  t: TestPlatform,
  email: string,
  role: OperatorRole,
  organization = t.org,
  password = STRONG_PASSWORD,
): Promise<TestUser> {
  const orgId = await organizationId(t, organization);
  const { user } = await t.platform.accounts.service.createOperator(cliActor(orgId, 'test'), {
    email,
    name: email.split('@')[0]!,
    role,
    password,
  });
  return { id: user.id, organization, email: user.email, password, secret: null };
}

/** A consumer whose email is verified, as self sign-up leaves them. */
export async function insertConsumer(t: TestPlatform, email: string, password: string, organization = t.org): Promise<TestUser> {
  const orgId = await organizationId(t, organization);
  const now = t.clock.now();
  const row = newUserRow({
    organizationId: orgId,
    kind: 'consumer',
    email,
    name: 'Consumer',
    role: null,
    passwordHash: await hashPassword(password),
    emailVerifiedAt: now,
    mustChangePassword: false,
    now,
  });
  await t.platform.accounts.store.insertUser(row);
  const id = row.id;

  return { id, organization, email, password, secret: null };
}

/** Enrols TOTP on a session (any scope that allows it); returns the secret, recovery codes and the session to use next. */
export async function enrolMfa(
  t: TestPlatform,
  token: string,
  client = t.client(),
): Promise<{ secret: string; recoveryCodes: string[]; token: string }> {
  const begun = await client.post('/api/v1/me/mfa/totp', undefined, { token });
  if (begun.status !== 200) throw new Error(`could not start enrolment: ${begun.text}`);
  const confirmed = await client.post('/api/v1/me/mfa/totp/confirm', { code: await totp(begun.body.secret, t.clock) }, { token });
  if (confirmed.status !== 200) throw new Error(`could not confirm enrolment: ${confirmed.text}`);
  // The code's time step is now spent: the next code must come from a later step.
  t.clock.advance(30_000);
  return { secret: begun.body.secret, recoveryCodes: confirmed.body.recoveryCodes, token: confirmed.body.session?.token ?? token };
}

/**
 * Signs a user in with a bearer token, completing the MFA step or the forced enrolment when
 * asked for (the user's secret is filled in on enrolment). Returns the full session's token.
 */
export async function signIn(t: TestPlatform, user: TestUser, client: HttpClient = t.client()): Promise<string> {
  const login = await client.post('/api/v1/auth/login', { organization: user.organization, email: user.email, password: user.password });
  if (login.status !== 200) throw new Error(`could not sign in ${user.email}: ${login.text}`);
  switch (login.body.status) {
    case 'ok':
      return login.body.token;
    case 'mfa_required': {
      if (!user.secret) throw new Error(`${user.email} has MFA but the test holds no secret`);
      const done = await client.post('/api/v1/auth/mfa', { code: await totp(user.secret, t.clock) }, { token: login.body.token });
      if (done.body.status !== 'ok') throw new Error(`MFA step failed for ${user.email}: ${done.text}`);
      t.clock.advance(30_000);
      return done.body.token;
    }
    case 'mfa_enrollment_required': {
      const enrolled = await enrolMfa(t, login.body.token, client);
      user.secret = enrolled.secret;
      return enrolled.token;
    }
    default:
      throw new Error(`unexpected sign-in status for ${user.email}: ${login.text}`);
  }
}

/**
 * Signs a user in with the password as the console does (cookie mode), on a client that keeps
 * cookies: the session cookie stays in the client's jar, and state-changing requests send the
 * answer's CSRF token in x-csrf-token. Throws unless the sign-in is complete (`ok`).
 */
export async function cookieSignIn(
  t: TestPlatform,
  user: { email: string; password: string; organization?: string },
  client: HttpClient = t.client(true),
): Promise<{ client: HttpClient; csrfToken: string; login: HttpResponse }> {
  const login = await client.post('/api/v1/auth/login', {
    organization: user.organization ?? t.org,
    email: user.email,
    password: user.password,
    mode: 'cookie',
  });
  if (login.status !== 200 || login.body.status !== 'ok') throw new Error(`could not sign ${user.email} in with a cookie: ${login.text}`);
  return { client, csrfToken: login.body.csrfToken, login };
}

/** A six-digit code that matches none of the steps the server accepts now (previous, current, next). */
export async function wrongTotp(secret: string, t: TestPlatform): Promise<string> {
  const epoch = Math.floor(t.clock.now() / 1000);
  const valid = new Set(await Promise.all([-30, 0, 30].map((d) => generate({ secret, epoch: epoch + d }))));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

/** The first owner with the password and TOTP secret that `ownerSession` left them with. */
export async function firstOwner(t: TestPlatform, session: { password: string; secret: string }): Promise<TestUser> {
  const row = await t.platform.accounts.store.userByEmail(await organizationId(t), t.owner.email);
  return { id: row!.id, organization: t.org, email: t.owner.email, password: session.password, secret: session.secret };
}

/** Re-proves a factor: the TOTP code when the user has one (then moves past its time step), else the password. */
export async function stepUp(t: TestPlatform, user: TestUser, token: string, client: HttpClient = t.client()): Promise<void> {
  const res = await client.post(
    '/api/v1/auth/step-up',
    user.secret ? { code: await totp(user.secret, t.clock) } : { password: user.password },
    { token },
  );
  if (res.status !== 200) throw new Error(`step-up failed: ${res.status} ${res.text}`);
  if (user.secret) t.clock.advance(30_000);
}
