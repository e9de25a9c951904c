/**
 * The web console end to end: Debian's Chromium (through playwright-core) against a real platform
 * (HTTPS API serving the built console, MQTT broker over mutual TLS, SQLite). The owner's first
 * sign-in with the forced password change and TOTP enrolment; the fleet page at 1440, 1024 and
 * 390 px; finding one device among 10,000 and quarantining it behind a confirmation and step-up,
 * which drops its MQTT connection; and the attacks: a device serial and a product name carrying markup
 * (rendered inert), framing from another origin (refused), a state-changing request from another
 * origin and one without the CSRF token (refused). axe-core checks each page (no serious or
 * critical violation); screenshots go to test-artifacts/web/ (gitignored).
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { cliActor } from '../../server/src/accounts/roles.js';
import { chromiumSkip, type Chromium } from '../../server/src/testing/chromium.js';
import { ENGINES } from '../../server/src/testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../../server/src/testing/devices.js';
import { connectDevice, eventually, presenceOnline } from '../../server/src/testing/mqtt.js';
import { startTestPlatform, type TestPlatform } from '../../server/src/testing/server.js';
import type { MqttClient } from 'mqtt';
import { accessible as axeCheck, artifacts, firstSignIn, openConsole, shot as screenshot, totpOf } from './harness.js';

const skip = chromiumSkip("the console's browser tests are");

const DEVICES = 10_000;
const XSS_SERIAL = 'XSS<img/src=x/onerror=window.__xss=1>';
const XSS_PRODUCT = '<img src=x onerror="window.__xss=2"><script>window.__xss=3</script>';

let t: TestPlatform;
let browser: Chromium;
let context: BrowserContext;
let page: Page;
let base: string;
let target: TestDevice;
let xssDeviceId: string;
let connection: MqttClient;
let totpSecret = '';
let attacker: Server;
let attackerUrl: string;

const code = () => totpOf(t, totpSecret);
const shot = (name: string) => screenshot(page, name);
const accessible = (what: string) => axeCheck(page, what);

before(async () => {
  if (skip) return;
  t = await startTestPlatform(ENGINES[0]!, { auth: { loginRateLimitPerMinute: 10_000 } });
  base = `https://localhost:${t.server.port}`;
  const organizationId = await organizationIdOf(t.platform, t.org);
  const thermostat = await testProduct(t.platform, organizationId, 'Thermostat');
  const doorbell = await testProduct(t.platform, organizationId, 'Doorbell');
  const rows = Array.from({ length: DEVICES }, (_, i) => ({
    line: i + 1,
    value: { serial: `SN-${String(i).padStart(5, '0')}`, productId: i % 3 === 0 ? doorbell : thermostat, tags: [i % 2 ? 'odd' : 'even'] },
  }));
  await t.platform.devices.service.import(cliActor(organizationId, 'test'), rows, 'ndjson');
  const xssProduct = await testProduct(t.platform, organizationId, XSS_PRODUCT);
  const xss = await t.platform.devices.service.register(cliActor(organizationId, 'test'), { serial: XSS_SERIAL, productId: xssProduct });
  xssDeviceId = xss.id;
  // Certificates before any sign-in moves the platform clock ahead (see testing/server.ts).
  target = await provisionTestDevice(t.platform, organizationId, thermostat, 'TARGET-7731');
  connection = await connectDevice(t.server.mqtt!.port, t.ca, target, target.id);
  await presenceOnline(t.platform.db, target.id);

  attacker = createServer((request, response) => {
    const body = request.url?.startsWith('/frame')
      ? `<!doctype html><title>attacker</title><iframe id="victim" src="${base}/console/" width="800" height="600"></iframe>`
      : `<!doctype html><title>attacker</title>
         <form id="csrf" method="POST" action="${base}/api/v1/devices/${target.id}/activate" enctype="text/plain">
           <input name='{"x":"' value='"}'></form>`;
    response.writeHead(200, { 'content-type': 'text/html' }).end(body);
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;

  ({ browser, page } = await openConsole());
  context = browser.context;
});

after(async () => {
  await browser?.close();
  connection?.end(true);
  attacker?.closeAllConnections();
  attacker?.close();
  await t?.close();
});

test('first sign-in: one-time password, forced change, TOTP enrolment, recovery codes; nothing kept in web storage', { skip }, async () => {
  await page.goto(`${base}/`);
  await page.waitForURL(`${base}/console/`);
  totpSecret = await firstSignIn(page, t, async (step) => {
    await accessible(`the ${step} step`);
    await shot(step);
  });
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  assert.equal(await page.getByTestId('total').textContent(), (DEVICES + 2).toLocaleString('en'));
  assert.equal(await page.getByTestId('online').textContent(), '1');
  const storage = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));
  assert.deepEqual(storage, { local: 0, session: 0, cookies: '' }, 'no token in web storage, the session cookie is HttpOnly');
  const started = Date.now();
  await page.reload();
  await page.getByTestId('total').waitFor();
  console.log(`fleet page loaded and rendered in ${Date.now() - started} ms with ${DEVICES + 2} devices (reload to numbers shown)`);
  await accessible('the fleet page');
  for (const width of [1440, 1024, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await shot(`fleet-${width}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the fleet page scrolls sideways at ${width} px (${overflow} px)`);
  }
  await page.setViewportSize({ width: 1440, height: 900 });
});

test('finds one device among 10,000, quarantines it behind confirmation and step-up, and the broker drops it', { skip }, async () => {
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByRole('heading', { name: 'Devices' }).waitFor();
  await page.getByRole('cell', { name: 'SN-00000' }).waitFor();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('cell', { name: 'SN-00050' }).waitFor();
  await page.getByRole('button', { name: 'Previous' }).click();
  await page.getByRole('cell', { name: 'SN-00000' }).waitFor();
  await accessible('the device list');
  await shot('devices');

  // Keyboard only: type the search, submit with Enter, follow the link with Enter.
  await page.getByLabel('Serial starts with').fill('TARGET-77');
  await page.keyboard.press('Enter');
  const link = page.getByRole('link', { name: 'TARGET-7731' });
  await link.waitFor();
  assert.equal(await page.locator('tbody tr').count(), 1);
  await link.focus();
  await page.keyboard.press('Enter');

  await page.getByRole('heading', { name: 'Device TARGET-7731' }).waitFor();
  const fingerprint = await t.platform.db
    .selectFrom('issued_certificates')
    .select('fingerprint_sha256')
    .where('serial', '=', target.certSerial)
    .executeTakeFirstOrThrow();
  await page.getByTestId('fingerprint').waitFor();
  assert.equal(await page.getByTestId('fingerprint').textContent(), fingerprint.fingerprint_sha256);
  assert.match((await page.locator('main').textContent())!, /online since/);
  await accessible('the device page');
  await shot('device');

  await page.getByRole('button', { name: 'Quarantine…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Quarantine TARGET-7731?' });
  await dialog.waitFor();
  t.clock.advance(30_000); // a new TOTP step: the enrolment's code may not be used twice
  await dialog.getByLabel('Authentication code').fill('000000');
  await dialog.getByRole('button', { name: 'Quarantine' }).click();
  await dialog.getByRole('alert').waitFor();
  assert.equal(connection.connected, true, 'a wrong code quarantines nothing');
  await dialog.getByLabel('Authentication code').fill(await code());
  await accessible('the quarantine dialog');
  await shot('quarantine-dialog');
  await dialog.getByRole('button', { name: 'Quarantine' }).click();
  await page.getByRole('status').filter({ hasText: 'is quarantined' }).waitFor();
  assert.equal(await page.getByTestId('status').textContent(), 'quarantined');
  await eventually(() => !connection.connected, 5000, 'the broker closes the quarantined device');
  await shot('device-quarantined');
});

test('markup in a device serial and a product name is shown as text, never run', { skip }, async () => {
  await page.goto(`${base}/console/devices?serialPrefix=${encodeURIComponent('XSS<')}`);
  const link = page.getByRole('link', { name: XSS_SERIAL });
  await link.waitFor();
  await page.getByRole('cell', { name: XSS_PRODUCT }).waitFor();
  assert.equal(await page.locator('main img, main script').count(), 0);
  await shot('xss-list');
  await link.click();
  await page.getByRole('heading', { name: `Device ${XSS_SERIAL}` }).waitFor();
  assert.equal(await page.locator('main img, main script').count(), 0);
  assert.equal(await page.evaluate(() => (window as any).__xss), undefined);
  assert.equal(new URL(page.url()).pathname, `/console/devices/${xssDeviceId}`);
  await shot('xss-device');
});

test('the console refuses to be framed by another origin', { skip }, async () => {
  const answer = await page.request.get(`${base}/console/`);
  assert.equal(answer.headers()['x-frame-options'], 'DENY');
  const csp = answer.headers()['content-security-policy']!;
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /style-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(answer.headers()['cache-control'], 'no-cache');
  const html = await answer.text();
  const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
  assert.equal((await page.request.get(`${base}${asset}`)).headers()['cache-control'], 'public, max-age=31536000, immutable');

  const framing = await context.newPage();
  await framing.goto(`${attackerUrl}/frame`);
  await framing.waitForTimeout(1000);
  const frame = framing.frames().find((f) => f !== framing.mainFrame());
  assert.ok(frame, 'the attacker page has its iframe');
  const rendered = await frame.evaluate(() => document.querySelector('#root')?.childElementCount ?? -1).catch(() => -1);
  assert.equal(rendered, -1, 'the console did not load inside the frame');
  await framing.screenshot({ path: join(artifacts, 'framing-refused.png') });
  await framing.close();
});

test('state-changing requests from another origin, or without the CSRF token, are refused', { skip }, async () => {
  const forged = await context.newPage();
  await forged.goto(`${attackerUrl}/csrf`);
  await forged.evaluate(async (url) => {
    await fetch(url, { method: 'POST', credentials: 'include', mode: 'no-cors' }).catch(() => undefined);
  }, `${base}/api/v1/devices/${target.id}/activate`);
  // A cross-site form POST: the SameSite=Strict session cookie is not sent, so the API sees no session.
  const answered = forged.waitForResponse((response) => response.url().endsWith('/activate') && response.request().method() === 'POST');
  await forged.evaluate(() => setTimeout(() => (document.getElementById('csrf') as HTMLFormElement).submit(), 0));
  assert.equal((await answered).status(), 401);
  await forged.close();
  // The console's own origin, with the cookie but without the token.
  const withoutToken = await page.evaluate(async (url) => {
    const response = await fetch(url, { method: 'POST', credentials: 'same-origin' });
    return { status: response.status, code: (await response.json()).error.code };
  }, `/api/v1/devices/${target.id}/activate`);
  assert.deepEqual(withoutToken, { status: 403, code: 'auth.csrf_failed' });
  const device = await t.platform.devices.service.get(cliActor(target.organizationId, 'test'), target.id);
  assert.equal(device.status, 'quarantined', 'no forged request activated the device');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const session = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).status);
  assert.equal(session, 401, 'signed out: the session is gone');
});
