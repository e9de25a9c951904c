/**
 * Passkeys and the account pages end to end: Debian's Chromium with a virtual authenticator (CDP
 * WebAuthn domain) against a real platform (HTTPS, SQLite), its server key trusted by pin so the
 * pages are secure contexts without certificate errors (WebAuthn needs it).
 * The console: the owner registers a named passkey behind a step-up (the organization's policy
 * shown beside it), signs in with it alone and as the second factor, renames it from the keyboard,
 * and removes it behind a step-up. The attack: a passwordless sign-in's request replayed byte for
 * byte, with its ceremony cookie, is refused. Turning off the owner's authenticator app is refused
 * (owners must use MFA); the owner sets the organization's passkey policy on the security page from
 * the keyboard, behind confirmation and a step-up (an operator is offered no form); under it, an
 * operator creates a passkey at sign-in (from the keyboard) and is then offered only the passkey.
 * The companion app at 390 px: a consumer enrols TOTP on the account page (QR code, recovery
 * codes) and signs in with the code; registers a passkey, renames it and signs in with it; a
 * session revoked from the page is refused afterwards; changes the password (the old one refused,
 * other sessions ended); changes the email address behind a step-up, confirmed through the mailed
 * link; turns two-step verification off behind a step-up; downloads their data; deletes the
 * account (the step-up answered with the passkey), after which the password no longer signs in.
 * axe-core on each page (no serious or critical violation); screenshots to test-artifacts/web/
 * (account-*.png).
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createOperator, insertConsumer, signIn as signInForTest, type TestUser } from '../../server/src/testing/accounts.js';
import { addVirtualAuthenticator, chromiumSkip } from '../../server/src/testing/chromium.js';
import { mailsDuring, tokenIn } from '../../server/src/testing/mail.js';
import { STRONG_PASSWORD, type TestPlatform } from '../../server/src/testing/server.js';
import { qrPath } from '../src/qr.js';
import { accessible, artifacts, consoleSignIn, firstSignIn, fitsWidth, freshCode, shot, startWebPlatform } from './harness.js';

const skip = chromiumSkip('the passkey and account browser tests are');
const CONSUMER = 'robin@example.com';
const NEW_ADDRESS = 'robin.new@example.com';
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

let t: TestPlatform;
let browser: Browser;
let base: string;
const contexts: BrowserContext[] = [];
let consoleTab: Page;
let ownerSecret: string;
let phone: Page;
let consumer: TestUser;
let consumerEmail = CONSUMER;

async function tab(options: object): Promise<Page> {
  const context = await browser.newContext(options);
  contexts.push(context);
  const page = await context.newPage();
  await addVirtualAuthenticator(context, page);
  return page;
}

/** Fills a step-up dialog with a fresh TOTP code of `secret`, checks it, and confirms it with `confirm`. */
async function stepUp(page: Page, title: string, confirm: string, secret: string, screenshot?: string): Promise<void> {
  const dialog = page.getByRole('dialog', { name: title });
  await dialog.waitFor();
  await dialog.getByLabel('Authentication code').fill(await freshCode(t, secret));
  await accessible(page, `the dialog ${title}`);
  if (screenshot) await shot(page, screenshot);
  await dialog.getByRole('button', { name: confirm, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
}

/** What the page's own session (its cookie) gets from the API. */
function sessionGet(page: Page, path: string): Promise<{ status: number; body: any }> {
  return page.evaluate(async (url) => {
    const answer = await fetch(url);
    return { status: answer.status, body: await answer.json() };
  }, `/api/v1${path}`);
}

before(async () => {
  if (skip) return;
  ({ t, base, browser } = await startWebPlatform());
  consumer = await insertConsumer(t, CONSUMER, STRONG_PASSWORD);
  consoleTab = await tab({ viewport: { width: 1440, height: 900 } });
  phone = await tab(PHONE);
});

after(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await t?.close();
});

test('console: a named passkey registered behind a step-up signs in alone and as the second factor', { skip }, async () => {
  const page = consoleTab;
  await page.goto(`${base}/console/`);
  ownerSecret = await firstSignIn(page, t);
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.getByTestId('passkey-policy').filter({ hasText: 'does not require passkeys' }).waitFor();

  await page.getByLabel('Name for the new passkey').fill('Work laptop');
  await page.getByRole('button', { name: 'Add a passkey…' }).click();
  await stepUp(page, 'Add the passkey “Work laptop”?', 'Create passkey', ownerSecret, 'account-console-passkey-step-up');
  await page.getByText('Passkey “Work laptop” added').waitFor();
  await page.getByTestId('passkey').filter({ hasText: 'Work laptop' }).waitFor();
  const listed = await sessionGet(page, '/auth/passkeys');
  assert.deepEqual(
    listed.body.passkeys.map((p: { name: string }) => p.name),
    ['Work laptop'],
    'the platform holds the passkey under its name',
  );
  await accessible(page, 'the security page with a passkey');
  await shot(page, 'account-console-passkeys');
  await fitsWidth(page, 390, 'the security page with a passkey');

  // Passwordless: the passkey alone (user verified) signs in.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Use a passkey' }).waitFor();
  await accessible(page, 'the sign-in page with its passkey button');
  await shot(page, 'account-console-sign-in');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  assert.equal((await sessionGet(page, '/auth/session')).body.user.email, t.owner.email);
  const { entries } = await t.platform.audit.query({ action: 'auth.passkey_login', outcome: 'success' });
  assert.equal(entries.length, 1, 'the sign-in was the passkey');

  // As the second factor after the password: the page offers both the code and the passkey.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await consoleSignIn(page, t.org, t.owner.email, STRONG_PASSWORD);
  await page.getByLabel('Authentication code').waitFor();
  await accessible(page, 'the second step with a passkey offered');
  await shot(page, 'account-console-second-factor');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
});

test('attack: a passwordless sign-in replayed byte for byte (with its ceremony cookie) is refused', { skip }, async () => {
  const page = consoleTab;
  let captured: { body: string; cookie: string } | null = null;
  await page.route('**/api/v1/auth/passkeys/authentication/verify', async (route) => {
    const request = route.request();
    captured = { body: request.postData()!, cookie: (await request.allHeaders()).cookie ?? '' };
    await route.continue();
  });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.unroute('**/api/v1/auth/passkeys/authentication/verify');
  assert.ok(captured, 'the sign-in went through the verify request');
  const { body, cookie } = captured as { body: string; cookie: string };
  assert.match(cookie, /__Host-bulwark_passkey=/, 'the ceremony cookie went with it');

  const replay = await t.client().post('/api/v1/auth/passkeys/authentication/verify', JSON.parse(body), { headers: { cookie } });
  assert.equal(replay.status, 400, replay.text);
  assert.equal(replay.body.error.code, 'auth.passkey_challenge_invalid');
  assert.equal(replay.headers['set-cookie']?.toString().includes('bulwark_session'), false, 'no session for the replay');
});

test('console: a passkey renamed from the keyboard (the platform holds the new name)', { skip }, async () => {
  const page = consoleTab;
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByTestId('passkey').getByRole('button', { name: 'Rename Work laptop' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Rename the passkey “Work laptop”' });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel('New name').inputValue(), 'Work laptop', 'the field starts with the current name');
  await accessible(page, 'the rename dialog');
  await shot(page, 'account-console-passkey-rename');
  await dialog.getByLabel('New name').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('Office laptop');
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await page.getByTestId('passkey').filter({ hasText: 'Office laptop' }).waitFor();
  assert.deepEqual(
    (await sessionGet(page, '/auth/passkeys')).body.passkeys.map((p: { name: string }) => p.name),
    ['Office laptop'],
    'the platform holds the new name',
  );
});

test('console: the passkey removed behind a step-up no longer signs in', { skip }, async () => {
  const page = consoleTab;
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByTestId('passkey').getByRole('button', { name: 'Remove Office laptop' }).click();
  await stepUp(page, 'Remove the passkey “Office laptop”?', 'Remove passkey', ownerSecret);
  await page.getByText('No passkey yet.').waitFor();
  assert.equal((await sessionGet(page, '/auth/passkeys')).body.passkeys.length, 0);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.getByRole('alert').waitFor();
  assert.match((await page.getByRole('alert').textContent()) ?? '', /passkey was not accepted/);
  assert.equal((await sessionGet(page, '/auth/session')).status, 401, 'still signed out');
});

/**
 * The owner signs in (password and code) and sets the policy "operators must use a passkey" on the
 * security page from the keyboard: the box ticked with Space, the form sent with Enter, the
 * confirmation's step-up code typed and sent with Enter.
 */
async function setPolicyAsOwner(page: Page): Promise<void> {
  await page.goto(`${base}/console/`);
  await consoleSignIn(page, t.org, t.owner.email, STRONG_PASSWORD);
  await page.getByLabel('Authentication code').fill(await freshCode(t, ownerSecret));
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.getByRole('link', { name: 'Security' }).click();

  // Owners must use MFA (the default policy) and this one holds no passkey: turning the app off is refused.
  await page.getByRole('button', { name: 'Turn off…' }).click();
  const off = page.getByRole('dialog', { name: 'Turn off the authenticator app?' });
  await off.getByLabel('Authentication code').fill(await freshCode(t, ownerSecret));
  await accessible(page, 'the turn-off dialog');
  await off.getByRole('button', { name: 'Turn off', exact: true }).click();
  await off.getByRole('alert').filter({ hasText: 'requires MFA for the owner role' }).waitFor();
  await off.getByRole('button', { name: 'Cancel' }).click();
  await off.waitFor({ state: 'hidden' });
  assert.equal((await sessionGet(page, '/auth/session')).body.user.mfaEnabled, true, 'the authenticator stays on');

  const form = page.getByRole('form', { name: 'Passkey policy' });
  await form.waitFor();
  assert.equal(await form.getByRole('button', { name: 'Save policy…' }).isDisabled(), true, 'nothing to save yet');
  await form.getByRole('checkbox', { name: 'operator' }).focus();
  await page.keyboard.press('Space');
  for (let tab = 0; tab < 3; tab++) await page.keyboard.press('Tab'); // release engineer, auditor, the button
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Save policy…');
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: "Change the organization's passkey policy?" });
  await dialog.waitFor();
  await dialog.getByText('Members who are operator must sign in with a passkey').waitFor();
  await accessible(page, 'the passkey policy dialog');
  await shot(page, 'account-console-passkey-policy-step-up');
  await dialog.getByLabel('Authentication code').focus();
  await page.keyboard.type(await freshCode(t, ownerSecret));
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await page.getByText('The passkey policy is saved.').waitFor();
  await page.getByTestId('passkey-policy').filter({ hasText: 'for these roles: operator.' }).waitFor();
  assert.deepEqual((await sessionGet(page, '/org')).body.passkeyRequiredRoles, ['operator'], 'the platform holds the policy');
  const [changed] = (await t.platform.audit.query({ action: 'org.passkey_policy_changed' })).entries;
  assert.deepEqual(changed?.details, { passkeyRequiredRoles: ['operator'], previous: [] });
  await accessible(page, 'the security page with the policy form');
  await shot(page, 'account-console-passkey-policy');
  for (const width of [1024, 390]) await fitsWidth(page, width, 'the security page with the policy form');
}

test(
  'console: the owner sets the passkey policy behind a step-up; an operator then creates a passkey at sign-in (keyboard only), and is offered only the passkey',
  { skip },
  async () => {
    const page = consoleTab;
    await setPolicyAsOwner(page);
    const operator = await createOperator(t, 'ops@example.com', 'operator');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await consoleSignIn(page, t.org, operator.email, operator.password);
    await page.getByRole('heading', { name: 'Create a passkey' }).waitFor();
    await accessible(page, 'the passkey the policy asks for');
    await shot(page, 'account-console-passkey-required');
    await page.getByLabel('Name for the new passkey').focus();
    await page.keyboard.type('Ops laptop');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.getByRole('link', { name: 'Security' }).click();
    await page.getByTestId('passkey-policy').filter({ hasText: 'That includes you (operator)' }).waitFor();
    assert.equal(await page.getByRole('form', { name: 'Passkey policy' }).count(), 0, 'an operator (no org:manage) cannot set the policy');
    await page.getByTestId('passkey').filter({ hasText: 'Ops laptop' }).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await consoleSignIn(page, t.org, operator.email, operator.password);
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await accessible(page, 'the second step offering only the passkey');
    await shot(page, 'account-console-passkey-only');
    await page.getByRole('button', { name: 'Use a passkey' }).focus();
    assert.equal(await page.getByLabel('Authentication code').count(), 0, 'no code is offered to a role that must use a passkey');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    assert.equal((await sessionGet(page, '/auth/session')).body.user.email, operator.email);
  },
);

/** The consumer's sign-in on the phone: password, then the code from `secret` when asked. */
async function appSignIn(secret?: string): Promise<void> {
  await phone.goto(`${base}/app/?org=${t.org}`);
  await phone.getByLabel('Email').fill(CONSUMER);
  await phone.getByLabel('Password').fill(STRONG_PASSWORD);
  await phone.getByRole('button', { name: 'Sign in', exact: true }).click();
  if (secret) {
    await phone.getByRole('heading', { name: 'Two-step check' }).waitFor();
    await phone.getByLabel('Code from your authenticator app').fill(await freshCode(t, secret));
    await phone.getByRole('button', { name: 'Continue' }).click();
  }
  await phone.getByRole('heading', { name: 'My devices' }).waitFor();
}

async function appPage(name: string, what: string): Promise<void> {
  await accessible(phone, what);
  await fitsWidth(phone, 390, what);
  await shot(phone, `account-app-${name}`);
}

test('app: two-step verification set up on the account page (QR code, recovery codes), then the code signs in', { skip }, async () => {
  await appSignIn();
  await phone.getByRole('link', { name: 'Account' }).click();
  await phone.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
  await appPage('page', 'the account page');
  await phone.getByRole('button', { name: 'Set up an authenticator' }).click();
  const secret = (await phone.locator('code.secret').first().textContent())!;
  await phone.getByText('Show the link').click();
  const uri = (await phone.getByTestId('otpauth-uri').textContent())!;
  assert.match(uri, new RegExp(`^otpauth://totp/.+secret=${secret}`));
  const drawn = await phone.getByRole('img', { name: 'QR code of the authenticator key' }).locator('path').getAttribute('d');
  assert.equal(drawn, qrPath(uri).path, 'the QR code encodes the otpauth URI');
  await appPage('totp-enrolment', 'the enrolment on the account page');
  await phone.getByLabel('Authentication code').fill(await freshCode(t, secret));
  await phone.getByRole('button', { name: 'Confirm' }).click();
  await phone.getByTestId('mfa-state').waitFor();
  assert.equal(await phone.locator('.codes li').count(), 10, 'the recovery codes, shown once');
  await appPage('recovery-codes', 'the recovery codes');
  consumer.secret = secret;

  await phone.getByRole('button', { name: 'Sign out' }).click();
  await appSignIn(secret);
  const session = await sessionGet(phone, '/auth/session');
  assert.equal(session.body.scope, 'full');
  assert.equal(session.body.user.email, CONSUMER);
});

test('app: a passkey registered on the account page signs in without the password', { skip }, async () => {
  await phone.getByRole('link', { name: 'Account' }).click();
  await phone.getByLabel('Name for the new passkey').fill('My phone');
  await phone.getByRole('button', { name: 'Add a passkey…' }).click();
  await stepUp(phone, 'Add the passkey “My phone”?', 'Create passkey', consumer.secret!);
  await phone.getByTestId('passkey').filter({ hasText: 'My phone' }).waitFor();
  await appPage('passkeys', 'the account page with a passkey');
  await phone.getByTestId('passkey').getByRole('button', { name: 'Rename My phone' }).click();
  const rename = phone.getByRole('dialog', { name: 'Rename the passkey “My phone”' });
  await rename.getByLabel('New name').fill('Robin’s phone');
  await appPage('passkey-rename', 'the rename dialog');
  await rename.getByRole('button', { name: 'Save name' }).click();
  await rename.waitFor({ state: 'hidden' });
  await phone.getByTestId('passkey').filter({ hasText: 'Robin’s phone' }).waitFor();
  assert.deepEqual(
    (await sessionGet(phone, '/auth/passkeys')).body.passkeys.map((p: { name: string }) => p.name),
    ['Robin’s phone'],
  );

  await phone.getByRole('button', { name: 'Sign out' }).click();
  await phone.getByRole('heading', { name: 'Sign in' }).waitFor();
  await appPage('sign-in', 'the sign-in page with its passkey button');
  await phone.getByRole('button', { name: 'Use a passkey' }).click();
  await phone.getByRole('heading', { name: 'My devices' }).waitFor();
  assert.equal((await sessionGet(phone, '/auth/session')).body.user.email, CONSUMER);
  const storage = await phone.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));
  assert.deepEqual(storage, { local: 0, session: 0, cookies: '' }, 'nothing in web storage, the session cookie is HttpOnly');
});

test('app: a session revoked from the account page is refused afterwards', { skip }, async () => {
  t.clock.advance(30_000); // past the code the page used
  const otherToken = await signInForTest(t, consumer);
  assert.equal((await t.client().get('/api/v1/auth/session', { token: otherToken })).status, 200);
  await phone.getByRole('link', { name: 'Account' }).click();
  const sessions = phone.getByTestId('session');
  await sessions.nth(1).waitFor();
  assert.equal(await sessions.count(), 2);
  await sessions.getByRole('button', { name: 'Revoke' }).click();
  const dialog = phone.getByRole('dialog', { name: 'Revoke this session?' });
  await accessible(phone, 'the revoke dialog');
  await dialog.getByRole('button', { name: 'Revoke session' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await phone.waitForFunction(() => document.querySelectorAll('[data-testid="session"]').length === 1);
  assert.equal((await t.client().get('/api/v1/auth/session', { token: otherToken })).status, 401, 'the revoked session is refused');
});

test('app: the password changed on the account page: the new one signs in, the old one not, my other sessions end', { skip }, async () => {
  const NEW_PASSWORD = 'a new and longer passphrase 8';
  t.clock.advance(30_000);
  const otherToken = await signInForTest(t, consumer);
  await phone.getByLabel('Current password').fill(STRONG_PASSWORD);
  await phone.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await phone.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
  await phone.getByRole('button', { name: 'Change password' }).click();
  await phone.getByText('Your password is changed').waitFor();
  await appPage('password-changed', 'the account page after a password change');
  const login = (password: string) => t.client().post('/api/v1/auth/login', { organization: t.org, email: CONSUMER, password });
  assert.equal((await login(STRONG_PASSWORD)).status, 401, 'the old password is refused');
  assert.equal((await login(NEW_PASSWORD)).body.status, 'mfa_required', 'the new one is taken (then the second factor)');
  assert.equal((await t.client().get('/api/v1/auth/session', { token: otherToken })).status, 401, 'my other session ended');
  assert.equal((await sessionGet(phone, '/auth/session')).status, 200, 'this browser keeps a session');
  consumer.password = NEW_PASSWORD;
});

test('app: the email address changed behind a step-up, confirmed through the mailed link', { skip }, async () => {
  await phone.getByRole('link', { name: 'Account' }).click();
  await phone.getByLabel('New email address').fill(NEW_ADDRESS);
  await phone.getByRole('button', { name: 'Change email…' }).click();
  const mails = await mailsDuring(t, () =>
    stepUp(phone, `Use ${NEW_ADDRESS} for your account?`, 'Send the link', consumer.secret!, 'account-app-email-step-up'),
  );
  await phone.getByText(`We sent a link to ${NEW_ADDRESS}`).waitFor();
  assert.equal((await sessionGet(phone, '/auth/session')).body.user.email, CONSUMER, 'the address stays until the link is opened');
  const link = mails.find((mail) => mail.to === NEW_ADDRESS);
  assert.ok(link, 'a link to the new address');
  assert.ok(
    mails.some((mail) => mail.to === CONSUMER),
    'a notice to the current one',
  );
  const token = tokenIn(link);
  assert.ok(link.text.includes(`/account/email#token=${token}`), 'the mail links to the confirmation page');
  await appPage('email-requested', 'the account page after asking for a new address');

  await phone.goto(`${base}/account/email#token=${token}`);
  await phone.getByText(`Your email address is now ${NEW_ADDRESS}.`).waitFor();
  assert.equal(new URL(phone.url()).hash, '', 'the token is dropped from the address bar');
  await appPage('email-changed', 'the confirmation page');
  assert.equal((await sessionGet(phone, '/auth/session')).body.user.email, NEW_ADDRESS);
  await phone.getByRole('link', { name: 'Back to my account' }).click();
  await phone.getByTestId('email').filter({ hasText: NEW_ADDRESS }).waitFor();
  consumerEmail = NEW_ADDRESS;
});

test('app: two-step verification turned off behind a step-up (audited)', { skip }, async () => {
  await phone.getByRole('button', { name: 'Turn off…' }).click();
  await stepUp(phone, 'Turn off the authenticator app?', 'Turn off', consumer.secret!, 'account-app-mfa-off');
  await phone.getByText('The authenticator app is turned off').waitFor();
  await phone.getByTestId('mfa-off').waitFor();
  await appPage('mfa-off', 'the account page with the authenticator off');
  assert.equal((await sessionGet(phone, '/auth/session')).body.user.mfaEnabled, false);
  const [audited] = (await t.platform.audit.query({ action: 'mfa.disabled' })).entries;
  assert.equal(audited?.target.id, consumer.id);
});

test('app: my data downloads as JSON; the account deleted behind a passkey step-up no longer signs in', { skip }, async () => {
  const download = phone.waitForEvent('download');
  await phone.getByRole('link', { name: 'Download my data' }).click();
  const exported = JSON.parse(readFileSync((await (await download).path())!, 'utf8'));
  assert.equal(exported.profile.email, consumerEmail);
  assert.equal(exported.mfa.enabled, false);
  assert.ok(Array.isArray(exported.sessions) && exported.sessions.length >= 1, 'with my sessions');

  await phone.getByRole('button', { name: 'Delete my account…' }).click();
  // The step-up answered with the passkey instead of a code.
  const dialog = phone.getByRole('dialog', { name: 'Delete your account?' });
  await dialog.waitFor();
  await accessible(phone, 'the delete dialog');
  await shot(phone, 'account-app-delete');
  await dialog.getByRole('button', { name: 'Use a passkey' }).click();
  await phone.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(
    (await t.client().post('/api/v1/auth/login', { organization: t.org, email: consumerEmail, password: consumer.password })).status,
    401,
  );
  assert.ok(existsSync(join(artifacts, 'account-app-passkeys.png')));
});
