/**
 * A third-party companion app signs a consumer in through the platform's hosted authorization
 * page, in a real browser: Debian's Chromium on a phone (390x844) against a real platform (HTTPS,
 * SQLite) whose OAuth issuer is its own URL. The app is the app SDK (`beginLogin`, `completeLogin`)
 * with its redirect URI on another origin: a small HTTP server on 127.0.0.1 that records what the
 * browser brings back. The authorization URL opened signed out lands on "Sign in to continue to
 * <App>" with the brand filled in; after the sign-in (also with the authenticator-code step) the
 * page asks for consent (the scopes in words); Allow brings the code and state to the app, which redeems it and reads the consumer's
 * devices with the token; Deny brings access_denied. Attacks: an unregistered redirect URI is shown
 * as an error (signed in or out) and nothing reaches it; the consent cannot be given without the
 * session's CSRF header, nor by a form on another origin, nor inside another origin's frame; an
 * operator's session is refused on the page and the app hears nothing. axe-core on each page,
 * no sideways scrolling at 390 px; screenshots `app-authorize-*` in test-artifacts/web/.
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { AppAuth, MemoryTokenStorage } from '../../app-sdk/src/auth.js';
import { AuthorizationError } from '../../app-sdk/src/errors.js';
import { fetchTrusting } from '../../app-sdk/src/testing/fetch.js';
import { cliActor } from '../../server/src/accounts/roles.js';
import { createOperator, enrolMfa, insertConsumer, organizationId, signIn, type TestUser } from '../../server/src/testing/accounts.js';
import { chromiumSkip } from '../../server/src/testing/chromium.js';
import { freePort } from '../../server/src/testing/pg-cluster.js';
import { STRONG_PASSWORD, totp, type TestPlatform } from '../../server/src/testing/server.js';
import { accessible, fitsWidth, shot, startWebPlatform } from './harness.js';

const skip = chromiumSkip('the hosted authorization page browser tests are');
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const APP_NAME = 'Home dashboard';

/**
 * An origin the browser reaches (http on 127.0.0.1) that records every request it gets (but the
 * browser's own favicon's, and `/start?to=<URL>`: the app's page with a "Sign in" link to that URL).
 */
interface Recorder {
  origin: string;
  seen: URL[];
  server: Server;
}

async function recorder(): Promise<Recorder> {
  const seen: URL[] = [];
  const server = createServer((request, response) => {
    if (request.url === '/favicon.ico') return void response.writeHead(404).end();
    const start = new URL(request.url!, 'http://127.0.0.1');
    if (start.pathname === '/start')
      return void response
        .writeHead(200, { 'content-type': 'text/html' })
        .end(`<!doctype html><title>The app</title><a href="${start.searchParams.get('to')!.replace(/"/g, '&quot;')}">Sign in</a>`);
    seen.push(new URL(request.url!, 'http://127.0.0.1'));
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>The app</title><p>Back in the app.</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

let t: TestPlatform;
let base: string;
let browser: Browser;
const contexts: BrowserContext[] = [];
const servers: Server[] = [];
let transport: ReturnType<typeof fetchTrusting>;
let app: Recorder;
let redirectUri: string;
let clientId: string;
let consumer: TestUser;
let phone: Page;

async function tab(): Promise<Page> {
  const context = await browser.newContext(PHONE);
  contexts.push(context);
  return context.newPage();
}

/** The app SDK as the third-party app uses it, asking for `scopes`. */
const appAuth = (scopes: string[]) =>
  new AppAuth({ baseUrl: base, clientId, redirectUri, scopes, storage: new MemoryTokenStorage(), fetch: transport.fetch });

/** axe-core, no sideways scrolling at 390 px, and a screenshot. */
async function checked(page: Page, name: string, what: string): Promise<void> {
  await accessible(page, what);
  await fitsWidth(page, 390, what);
  await shot(page, `app-authorize-${name}`);
}

/** The browser arrives at the app's redirect URI: the URL it brought. */
async function arrival(page: Page, before: number): Promise<URL> {
  await page.waitForURL((url) => url.href.startsWith(redirectUri));
  assert.equal(app.seen.length, before + 1, 'the app got exactly one request');
  return app.seen.at(-1)!;
}

before(async () => {
  if (skip) return;
  const port = await freePort();
  ({ t, base, browser } = await startWebPlatform({ http: { port, publicUrl: `https://localhost:${port}` } }));
  transport = fetchTrusting(t.ca);
  app = await recorder();
  servers.push(app.server);
  redirectUri = `${app.origin}/callback`;
  const orgId = await organizationId(t);
  ({ clientId } = await t.platform.apps.clients.create(cliActor(orgId, 'test'), {
    name: APP_NAME,
    redirectUris: [redirectUri],
    scopes: ['account', 'devices:read', 'devices:control'],
    firstParty: false,
  }));
  consumer = await insertConsumer(t, 'jo@example.com', STRONG_PASSWORD);
  phone = await tab();
});

after(async () => {
  for (const context of contexts) await context.close();
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  transport?.close();
  await browser?.close();
  await t?.close();
});

test(
  'a third-party app signs the consumer in with PKCE through the hosted page: sign in, consent, Allow, the code at the app, a token that works',
  { skip },
  async () => {
    const auth = appAuth(['account', 'devices:read']);
    const { url, pending } = await auth.beginLogin();
    assert.ok(url.startsWith(`${base}/oauth/authorize?`), url);

    await phone.goto(url);
    await phone.getByRole('heading', { name: `Sign in to continue to ${APP_NAME}` }).waitFor();
    assert.equal(new URL(phone.url()).pathname, '/app/authorize', 'the navigation went to the hosted page');
    assert.equal(await phone.getByLabel('Brand').inputValue(), t.org, 'the brand is the app’s organization');
    await checked(phone, 'sign-in', 'the sign-in page for an app');
    await phone.getByLabel('Email').fill(consumer.email);
    await phone.getByLabel('Password').fill(STRONG_PASSWORD);
    await phone.getByRole('button', { name: 'Sign in' }).click();

    await phone.getByRole('heading', { name: `Allow ${APP_NAME} to use your account?` }).waitFor();
    const asked = await phone.getByRole('listitem').allTextContents();
    assert.deepEqual(asked, ['See and change your account details', 'See your devices and what they report']);
    assert.equal(app.seen.length, 0, 'nothing reached the app before the consent');
    await checked(phone, 'consent', 'the consent page');
    const seen = app.seen.length;
    await phone.getByRole('button', { name: 'Allow' }).click();

    const back = await arrival(phone, seen);
    assert.equal(back.pathname, '/callback');
    assert.equal(back.searchParams.get('state'), pending.state);
    assert.match(back.searchParams.get('code') ?? '', /^bwc_/);
    const tokens = await auth.completeLogin(`${redirectUri}${back.search}`, pending);
    assert.equal(tokens.scope, 'account devices:read');
    const devices = await transport.fetch(`${base}/api/v1/my/devices`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
    assert.equal(devices.status, 200);
    assert.deepEqual(await devices.json(), { devices: [] });
    const granted = await t.platform.audit.query({ action: 'app.consent_granted' });
    assert.equal(granted.entries.length, 1);

    // Asked again for the same scopes: the browser goes straight back to the app, with no page shown.
    const again = await appAuth(['account', 'devices:read']).beginLogin();
    const before = app.seen.length;
    await phone.goto(again.url);
    const straight = await arrival(phone, before);
    assert.ok(straight.searchParams.get('code'));
    assert.equal(straight.searchParams.get('state'), again.pending.state);

    // A link followed from the app's own web page (another site): the SameSite=Strict session cookie
    // stays behind on that navigation, so it goes through the hosted page, which finds the session and goes back.
    const linked = await appAuth(['account', 'devices:read']).beginLogin();
    await phone.goto(`${app.origin}/start?${new URLSearchParams({ to: linked.url }).toString()}`);
    const fromLink = app.seen.length;
    const hosted: string[] = [];
    const onRequest = (request: { url(): string }) =>
      void (new URL(request.url()).pathname === '/app/authorize' && hosted.push(request.url()));
    phone.on('request', onRequest);
    await phone.getByRole('link', { name: 'Sign in' }).click();
    const viaPage = await arrival(phone, fromLink);
    phone.off('request', onRequest);
    assert.equal(hosted.length, 1, 'the link went through the hosted page');
    assert.ok(viaPage.searchParams.get('code'));
    assert.equal(viaPage.searchParams.get('state'), linked.pending.state);
  },
);

test(
  'a consumer with two-step verification signs in on the hosted page with the code step, and the app gets its code',
  { skip },
  async () => {
    const user = await insertConsumer(t, 'kim@example.com', STRONG_PASSWORD);
    const { secret } = await enrolMfa(t, await signIn(t, user));
    const auth = appAuth(['account']);
    const { url, pending } = await auth.beginLogin();
    const page = await tab();
    await page.goto(url);
    await page.getByRole('heading', { name: `Sign in to continue to ${APP_NAME}` }).waitFor();
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Two-step check' }).waitFor();
    await page.getByLabel('Code from your authenticator app').fill(await totp(secret, t.clock));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: `Allow ${APP_NAME} to use your account?` }).waitFor();
    const seen = app.seen.length;
    await page.getByRole('button', { name: 'Allow' }).click();
    const back = await arrival(page, seen);
    assert.equal(back.searchParams.get('state'), pending.state);
    const tokens = await auth.completeLogin(`${redirectUri}${back.search}`, pending);
    const me = await transport.fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
    assert.equal(((await me.json()) as { email: string }).email, user.email, 'the token acts for the consumer who signed in');
  },
);

test('Deny returns access_denied to the app, and the SDK reports it', { skip }, async () => {
  const auth = appAuth(['devices:control']);
  const { url, pending } = await auth.beginLogin();
  await phone.goto(url);
  await phone.getByRole('heading', { name: `Allow ${APP_NAME} to use your account?` }).waitFor();
  assert.deepEqual(await phone.getByRole('listitem').allTextContents(), ['Change your devices’ settings and send them commands']);
  const seen = app.seen.length;
  await phone.getByRole('button', { name: 'Deny' }).click();
  const back = await arrival(phone, seen);
  assert.equal(back.searchParams.get('error'), 'access_denied');
  assert.equal(back.searchParams.get('code'), null);
  assert.equal(back.searchParams.get('state'), pending.state);
  await assert.rejects(auth.completeLogin(`${redirectUri}${back.search}`, pending), (error: unknown) => {
    assert.ok(error instanceof AuthorizationError);
    assert.equal(error.oauthError, 'access_denied');
    return true;
  });
});

test('attack: a redirect URI that is not registered is shown as an error, signed in or out, and nothing goes there', { skip }, async () => {
  const evil = await recorder();
  servers.push(evil.server);
  const { url } = await appAuth(['account']).beginLogin();
  const forged = new URL(url);
  forged.searchParams.set('redirect_uri', `${evil.origin}/steal`);
  const stranger = await tab();
  for (const [page, name] of [
    [phone, 'bad-redirect'],
    [stranger, 'bad-redirect-signed-out'],
  ] as const) {
    await page.goto(forged.href);
    await page.getByRole('heading', { name: 'This sign-in link does not work' }).waitFor();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /did not register/);
    await page.waitForTimeout(500);
    assert.equal(new URL(page.url()).origin, base, 'the browser stayed on the platform');
    await checked(page, name, `the error page (${name})`);
  }
  assert.equal(evil.seen.length, 0, 'nothing reached the unregistered redirect URI');
});

test(
  'attack: the consent needs the session’s CSRF header, a form on another origin cannot give it, and the page refuses framing',
  { skip },
  async () => {
    const { url } = await appAuth(['account', 'devices:control']).beginLogin();
    const request = Object.fromEntries(new URL(url).searchParams);
    const seen = app.seen.length;
    const consentsBefore = (await t.platform.audit.query({ action: 'app.consent_granted' })).entries.length;

    // The signed-in page's own origin, with the cookie but without the header: refused.
    await phone.goto(`${base}/app/`);
    const forged = await phone.evaluate(async (body) => {
      const answer = await fetch('/oauth/authorize/consent', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ ...body, decision: 'allow' }),
      });
      return { status: answer.status, body: await answer.json() };
    }, request);
    assert.equal(forged.status, 403);
    assert.equal(forged.body.code, 'auth.csrf_failed');

    // Another origin posts the consent as a form, and frames the page.
    const attacker = createServer((_request, response) => {
      const fields = Object.entries({ ...request, decision: 'allow' })
        .map(([name, value]) => `<input type="hidden" name="${name}" value="${value.replace(/"/g, '&quot;')}">`)
        .join('');
      response
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          `<!doctype html><title>attacker</title><form method="post" action="${base}/oauth/authorize/consent">${fields}<button>Win a prize</button></form>` +
            `<iframe src="${url.replace(/"/g, '&quot;')}" width="390" height="600"></iframe>`,
        );
    });
    servers.push(attacker);
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const evilPage = await phone.context().newPage();
    await evilPage.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
    await evilPage.waitForTimeout(1000);
    const frame = evilPage.frames().find((f) => f !== evilPage.mainFrame());
    assert.ok(frame, 'the attacker page has its iframe');
    const rendered = await frame.evaluate(() => document.querySelector('#root')?.childElementCount ?? -1).catch(() => -1);
    assert.equal(rendered, -1, 'the hosted page did not load inside the frame');
    const [answer] = await Promise.all([
      evilPage.waitForResponse(`${base}/oauth/authorize/consent`),
      evilPage.getByRole('button', { name: 'Win a prize' }).click(),
    ]);
    assert.ok([401, 403].includes(answer.status()), `the forged consent was answered ${answer.status()}`);
    assert.equal(answer.headers().location, undefined);
    await evilPage.close();

    assert.equal(app.seen.length, seen, 'no code reached the app');
    const consentsAfter = (await t.platform.audit.query({ action: 'app.consent_granted' })).entries.length;
    assert.equal(consentsAfter, consentsBefore, 'no consent was recorded');
  },
);

test('attack: an operator’s session cannot authorize an app; the page refuses plainly', { skip }, async () => {
  const operator = await createOperator(t, 'ops@example.com', 'operator');
  const page = await tab();
  await page.goto(`${base}/app/`);
  const login = await page.evaluate(
    async (body) => (await fetch('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json(),
    JSON.stringify({ organization: t.org, email: operator.email, password: operator.password, mode: 'cookie' }),
  );
  assert.equal(login.status, 'ok', JSON.stringify(login));
  const seen = app.seen.length;
  const { url } = await appAuth(['account']).beginLogin();
  await page.goto(url);
  await page.getByRole('heading', { name: 'Sign in with a customer account' }).waitFor();
  assert.match((await page.getByRole('alert').textContent()) ?? '', /signed in as an operator \(ops@example.com\)/);
  await page.waitForTimeout(500);
  assert.equal(app.seen.length, seen, 'the app heard nothing');
  await checked(page, 'operator-refused', 'the refusal of an operator');
});
