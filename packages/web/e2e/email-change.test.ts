/**
 * Changing one's email address end to end, in Debian's Chromium against a real platform (HTTPS,
 * SQLite), the outbox read for the mails. The console: an operator asks from the keyboard on the
 * account page, behind a confirmation and a password step-up; the link mailed to the new address
 * opens the console's confirmation page (the platform names the console's for an operator), which
 * confirms it; the new address signs in, the old one not, and the old address got a notice. The
 * mailed link opened signed out, in a fresh browser (console and companion app): the sign-in page
 * says why, no request carries the token before the sign-in, and once signed in the page confirms.
 * axe-core on each new page; screenshots to test-artifacts/web/ (email-*.png).
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createOperator, insertConsumer, signIn, stepUp, type TestUser } from '../../server/src/testing/accounts.js';
import { chromiumSkip } from '../../server/src/testing/chromium.js';
import { mailsDuring, tokenIn } from '../../server/src/testing/mail.js';
import { STRONG_PASSWORD, type TestPlatform } from '../../server/src/testing/server.js';
import { accessible, consoleSignIn, fitsWidth, shot, startWebPlatform } from './harness.js';

const skip = chromiumSkip('the email-change browser tests are');
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const SIGN_IN_TO_CONFIRM = 'Sign in to confirm your new email address.';

let t: TestPlatform;
let browser: Browser;
let base: string;
const contexts: BrowserContext[] = [];

/** A fresh browser: its own cookie jar, nobody signed in. */
async function freshTab(options: object = { viewport: { width: 1440, height: 900 } }): Promise<Page> {
  const context = await browser.newContext(options);
  contexts.push(context);
  return context.newPage();
}

const login = (email: string, password: string) => t.client().post('/api/v1/auth/login', { organization: t.org, email, password });

/** What the page's own session (its cookie) gets from the API. */
function sessionGet(page: Page, path: string): Promise<{ status: number; body: any }> {
  return page.evaluate(async (url) => {
    const answer = await fetch(url);
    return { status: answer.status, body: await answer.json() };
  }, `/api/v1${path}`);
}

/** The mailed link (https://…#token=…) in a mail's text. */
function linkIn(text: string): URL {
  const match = /^https:\/\/\S+#token=bwt_\S+$/m.exec(text);
  assert.ok(match, `no link in: ${text}`);
  return new URL(match[0]);
}

/** The mailed link on the test platform's address (the mail names the configured port, 0 here: an ephemeral one). */
const opened = (link: URL) => `${base}${link.pathname}${link.hash}`;

/** Asks for `user`'s address to become `newEmail` through the API (a step-up first); the link mailed to it. */
async function requestedLink(user: TestUser, newEmail: string): Promise<{ link: URL; token: string }> {
  const session = await signIn(t, user);
  await stepUp(t, user, session);
  const mails = await mailsDuring(t, async () => {
    const asked = await t.client().post('/api/v1/me/email', { newEmail }, { token: session });
    assert.equal(asked.status, 202, asked.text);
  });
  const mail = mails.find((m) => m.to === newEmail && m.kind === 'email_change');
  assert.ok(mail, 'a link to the new address');
  return { link: linkIn(mail.text), token: tokenIn(mail) };
}

/** Every request a page makes (URL and body), to show the token never leaves before the sign-in. */
function recordRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (request) => seen.push(`${request.url()} ${request.postData() ?? ''}`));
  return seen;
}

before(async () => {
  if (skip) return;
  ({ t, base, browser } = await startWebPlatform());
});

after(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await t?.close();
});

test(
  'console: an operator changes their email from the keyboard behind a step-up, confirmed through the mailed link',
  { skip },
  async () => {
    const operator = await createOperator(t, 'morgan@example.com', 'operator');
    const newAddress = 'morgan.new@example.com';
    const page = await freshTab();
    await page.goto(`${base}/console/`);
    await page.getByLabel('Organization').focus();
    await page.keyboard.type(t.org);
    await page.keyboard.press('Tab');
    await page.keyboard.type(operator.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(operator.password);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();

    await page.getByRole('link', { name: 'Security' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Email address' }).waitFor();
    await page.getByTestId('email').filter({ hasText: operator.email }).waitFor();
    await accessible(page, 'the account page with the email address');
    await fitsWidth(page, 390, 'the account page with the email address');
    await page.getByLabel('New email address').focus();
    await page.keyboard.type(newAddress);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: `Use ${newAddress} for your account?` });
    await dialog.waitFor();
    await accessible(page, 'the email-change dialog');
    await shot(page, 'email-console-step-up');
    const mails = await mailsDuring(t, async () => {
      await dialog.getByLabel('Password').focus();
      await page.keyboard.type(operator.password);
      await page.keyboard.press('Enter');
      await dialog.waitFor({ state: 'hidden' });
    });
    await page.getByText(`We sent a link to ${newAddress}`).waitFor();
    assert.equal((await sessionGet(page, '/auth/session')).body.user.email, operator.email, 'the address stays until the link is opened');
    assert.ok(
      mails.some((m) => m.to === operator.email && m.kind === 'email_change_notice' && m.text.includes(newAddress)),
      'a notice to the current address',
    );
    const mail = mails.find((m) => m.to === newAddress && m.kind === 'email_change');
    assert.ok(mail, 'a link to the new address');
    const link = linkIn(mail.text);
    assert.equal(link.pathname, '/console/account/email', "an operator's link opens the console");
    assert.equal(link.hash, `#token=${tokenIn(mail)}`);

    await page.goto(opened(link));
    await page.getByText(`Your email address is now ${newAddress}.`).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token is dropped from the address bar');
    assert.equal(new URL(page.url()).pathname, '/console/account/email');
    await page.locator('.topbar .who').filter({ hasText: newAddress }).waitFor();
    await accessible(page, 'the console confirmation page');
    await shot(page, 'email-console-confirmed');
    await page.getByRole('link', { name: 'Back to my account' }).focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('email').filter({ hasText: newAddress }).waitFor();

    assert.equal((await login(newAddress, operator.password)).status, 200, 'the new address signs in');
    assert.equal((await login(operator.email, operator.password)).status, 401, 'the old one is refused');
    const [changed] = (await t.platform.audit.query({ action: 'user.email_changed', targetId: operator.id })).entries;
    assert.ok(changed, 'the change is audited');
  },
);

test(
  'console: the link opened signed out, in a fresh browser, asks to sign in and then confirms; the token goes nowhere before',
  { skip },
  async () => {
    const operator = await createOperator(t, 'quinn@example.com', 'operator');
    const newAddress = 'quinn.new@example.com';
    const { link, token } = await requestedLink(operator, newAddress);
    const page = await freshTab();
    const requests = recordRequests(page);
    await page.goto(opened(link));
    await page.getByText(SIGN_IN_TO_CONFIRM).waitFor();
    await page.getByRole('heading', { name: 'Bulwark console' }).waitFor();
    assert.equal(await page.getByText(newAddress).count(), 0, 'the signed-out page shows nothing of the change');
    await accessible(page, 'the console sign-in asked by the link');
    await shot(page, 'email-console-signed-out');
    assert.ok(
      requests.every((r) => !r.includes(token)),
      'no request carries the token before the sign-in',
    );
    assert.equal((await login(operator.email, operator.password)).status, 200, 'nothing changed yet');

    await consoleSignIn(page, t.org, operator.email, operator.password);
    await page.getByText(`Your email address is now ${newAddress}.`).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token is dropped from the address bar');
    assert.equal((await sessionGet(page, '/auth/session')).body.user.email, newAddress);
    assert.equal(requests.filter((r) => r.includes(token)).length, 1, 'the token went once, to the confirmation');
  },
);

test('console: the link opened by another signed-in operator is refused on the page, and stays usable by its owner', { skip }, async () => {
  const owner = await createOperator(t, 'riley@example.com', 'operator');
  const other = await createOperator(t, 'sam@example.com', 'operator');
  const { link, token } = await requestedLink(owner, 'riley.new@example.com');
  const page = await freshTab();
  await page.goto(`${base}/console/`);
  await consoleSignIn(page, t.org, other.email, other.password);
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.goto(opened(link));
  await page.getByRole('alert').filter({ hasText: 'link or token is invalid' }).waitFor();
  await page.getByLabel('Code from the email').waitFor();
  await accessible(page, 'the confirmation page refusing the link');
  await shot(page, 'email-console-refused');
  assert.equal((await sessionGet(page, '/auth/session')).body.user.email, other.email, "the other operator's address is unchanged");

  const session = await signIn(t, owner);
  const confirmed = await t.client().post('/api/v1/me/email/confirm', { token }, { token: session });
  assert.equal(confirmed.status, 200, 'the refused attempt did not spend the token');
});

test('app: the link opened signed out, in a fresh phone browser, asks to sign in and then confirms', { skip }, async () => {
  const consumer = await insertConsumer(t, 'jo@example.com', STRONG_PASSWORD);
  const newAddress = 'jo.new@example.com';
  const { link, token } = await requestedLink(consumer, newAddress);
  assert.equal(link.pathname, '/account/email', "a consumer's link opens the companion app");
  const phone = await freshTab(PHONE);
  const requests = recordRequests(phone);
  await phone.goto(opened(link));
  await phone.getByText(SIGN_IN_TO_CONFIRM).waitFor();
  assert.equal(new URL(phone.url()).pathname, '/app/account/email', 'redirected to the app, the fragment kept');
  assert.equal(await phone.getByText(newAddress).count(), 0, 'the signed-out page shows nothing of the change');
  await accessible(phone, 'the app sign-in asked by the link');
  await fitsWidth(phone, 390, 'the app sign-in asked by the link');
  await shot(phone, 'email-app-signed-out');
  assert.ok(
    requests.every((r) => !r.includes(token)),
    'no request carries the token before the sign-in',
  );

  await phone.getByLabel('Brand').fill(t.org);
  await phone.getByLabel('Email').fill(consumer.email);
  await phone.getByLabel('Password').fill(STRONG_PASSWORD);
  await phone.getByRole('button', { name: 'Sign in', exact: true }).click();
  await phone.getByText(`Your email address is now ${newAddress}.`).waitFor();
  assert.equal(new URL(phone.url()).hash, '', 'the token is dropped from the address bar');
  await accessible(phone, 'the app confirmation page');
  await shot(phone, 'email-app-confirmed');
  assert.equal((await sessionGet(phone, '/auth/session')).body.user.email, newAddress);
  assert.equal((await login(consumer.email, STRONG_PASSWORD)).status, 401, 'the old address is refused');
});
