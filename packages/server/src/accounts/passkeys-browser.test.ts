/**
 * Passkeys in a real browser: Debian's Chromium (driven by playwright-core) with a virtual
 * authenticator (CDP WebAuthn domain) registers a passkey and signs in with it, through
 * navigator.credentials.create/get and the platform's API, on a page at the platform's origin.
 * The platform's own test CA is trusted by pinning its server key (--ignore-certificate-errors-spki-list),
 * so the page is a secure context as WebAuthn requires. SQLite only: storage runs on both engines
 * in passkeys.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { createOperator, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { addVirtualAuthenticator, chromiumSkip, launchChromium, trustServerKey, type Chromium } from '../testing/chromium.js';
import { ENGINES } from '../testing/engines.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const skip = chromiumSkip('the passkey browser tests are');

describe('passkeys in Chromium with a virtual authenticator', { skip }, () => {
  let t: TestPlatform;
  let browser: Chromium;
  let context: BrowserContext;
  let page: Page;
  let user: TestUser;
  let token: string;

  before(async () => {
    ({ t } = await startOwnerPlatform(sqlite));
    user = await createOperator(t, 'browser-pk@example.com', 'operator');
    token = await signIn(t, user);
    const origin = `https://localhost:${t.server.port}`;
    browser = await launchChromium({ args: [await trustServerKey(t.server.port, t.ca)] });
    context = browser.context;
    // The tiny page lives at the platform's origin (the RP's); its calls reach the real API.
    await context.route(`${origin}/passkey-test`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>passkey test</title><p>passkey test</p>' }),
    );
    page = await context.newPage();
    await addVirtualAuthenticator(context, page);
    await page.goto(`${origin}/passkey-test`);
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('registers a passkey with navigator.credentials.create and signs in with navigator.credentials.get (cookie session)', async () => {
    await stepUp(t, user, token);
    const registered = await page.evaluate(async (bearer) => {
      const headers = { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' };
      const begun = await (
        await fetch('/api/v1/auth/passkeys/registration/options', { method: 'POST', headers: { authorization: headers.authorization } })
      ).json();
      if (!begun.options) return { status: 0, body: begun };
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(begun.options);
      const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential;
      const answer = await fetch('/api/v1/auth/passkeys/registration/verify', {
        method: 'POST',
        headers,
        body: JSON.stringify({ response: credential.toJSON(), name: 'Chromium' }),
      });
      return { status: answer.status, body: await answer.json() };
    }, token);
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    assert.equal(registered.body.passkey.name, 'Chromium');

    const signedIn = await page.evaluate(async () => {
      const headers = { 'content-type': 'application/json' };
      const begun = await (
        await fetch('/api/v1/auth/passkeys/authentication/options', { method: 'POST', headers, body: JSON.stringify({ mode: 'cookie' }) })
      ).json();
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(begun.options);
      const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential;
      const answer = await fetch('/api/v1/auth/passkeys/authentication/verify', {
        method: 'POST',
        headers,
        body: JSON.stringify({ response: credential.toJSON(), mode: 'cookie' }),
      });
      const session = await fetch('/api/v1/auth/session');
      return { status: answer.status, body: await answer.json(), session: await session.json() };
    });
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    assert.equal(signedIn.body.status, 'ok');
    assert.equal(signedIn.session.user.email, user.email, 'the browser holds the session cookie');
    const { entries } = await t.platform.audit.query({ action: 'auth.passkey_login', outcome: 'success', targetId: user.id });
    assert.equal(entries.length, 1);
  });
});
