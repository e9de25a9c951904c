/**
 * Claiming a device from its box label in the companion app, end to end on a phone (390x844,
 * touch): Debian's Chromium against a real platform (HTTPS serving the built app, MQTT over mutual
 * TLS, SQLite) and a simulated device on the device SDK. The claim code is issued through the API
 * (`POST /api/v1/devices/claim-codes`), whose answer carries the label's link; the label's QR code
 * is computed from that link with uqr and shown to Chromium's fake camera as a Y4M video file
 * (`--use-fake-device-for-media-stream --use-file-for-fake-video-capture`), one browser per picture.
 *
 * 1. The label's link opened as the phone's camera app opens it: the fragment is off the address
 *    bar at once, before signing in, and no request carries the code; once signed in, the code is
 *    filled in and the product's privacy card shown.
 * 2. No camera: the dialog says so and the code can still be typed.
 * 3. The attack: a QR code holding a `javascript:` link, and one linking to another origin with a
 *    valid code in it, are each refused with a reason; nothing navigates, nothing runs, no request
 *    leaves for the other origin, the field stays empty. axe-core on the dialog (video and alert).
 * 4. Scan the QR code: the camera asked for is the back one, the field fills from the label and
 *    the dialog closes with the camera stopped; after the device's presence step the claim succeeds.
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { DeviceClient } from '../../device/src/index.js';
import { startDevicePlatform, tempDir, type DevicePlatform } from '../../device/src/testing/platform.js';
import { cliActor } from '../../server/src/accounts/roles.js';
import { insertConsumer } from '../../server/src/testing/accounts.js';
import { chromiumSkip, launchBrowser } from '../../server/src/testing/chromium.js';
import { presenceOnline } from '../../server/src/testing/mqtt.js';
import { qrVideoY4m } from '../../server/src/testing/qr.js';
import { ownerSession, STRONG_PASSWORD } from '../../server/src/testing/server.js';
import { accessible, fitsWidth, shot } from './harness.js';

const root = new URL('../../../', import.meta.url).pathname;
const appBuild = join(root, 'packages/web/dist/app/index.html');
const skip = chromiumSkip("the companion app's scanning tests");

const CONSUMER = 'robin@example.com';
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, ignoreHTTPSErrors: true };
const FAKE_CAMERA = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];

let p: DevicePlatform;
let device: DeviceClient;
let deviceId: string;
/** The label's link as the API answered it, its code and the app's origin (the link's). */
let link: string;
let code: string;
let origin: string;
const videos = tempDir('qr-video');
const browsers: Browser[] = [];
let pictures = 0;

/** A browser whose camera shows the QR code of `text` (or, without text, a browser with no camera at all); the previous one is closed. */
async function phoneWithCamera(text?: string): Promise<Page> {
  for (const browser of browsers.splice(0)) await browser.close();
  let args: string[] = [];
  if (text !== undefined) {
    const file = join(videos.dir, `${++pictures}.y4m`);
    writeFileSync(file, qrVideoY4m(text));
    args = [...FAKE_CAMERA, `--use-file-for-fake-video-capture=${file}`];
  }
  const browser = await launchBrowser(args);
  browsers.push(browser);
  const context = await browser.newContext(PHONE);
  // What the page asks of the camera and the tracks it gets, to check which camera and that it is stopped.
  await context.addInitScript(() => {
    const record = window as unknown as { cameraAsked: MediaStreamConstraints[]; cameraTracks: MediaStreamTrack[] };
    record.cameraAsked = [];
    record.cameraTracks = [];
    const media = navigator.mediaDevices;
    if (!media) return;
    const getUserMedia = media.getUserMedia.bind(media);
    media.getUserMedia = async (constraints) => {
      record.cameraAsked.push(constraints ?? {});
      const stream = await getUserMedia(constraints);
      record.cameraTracks.push(...stream.getTracks());
      return stream;
    };
  });
  return context.newPage();
}

async function signIn(tab: Page): Promise<void> {
  await tab.getByLabel('Brand').fill(p.t.org);
  await tab.getByLabel('Email').fill(CONSUMER);
  await tab.getByLabel('Password').fill(STRONG_PASSWORD);
  await tab.getByRole('button', { name: 'Sign in' }).click();
}

/** Signed in from the Add a device page, which comes back once signed in. */
async function signedInOnAddPage(tab: Page): Promise<void> {
  await tab.goto(`${origin}/app/add`);
  await signIn(tab);
  await tab.getByRole('heading', { name: 'Add a device' }).waitFor();
}

/** axe-core's check, no sideways scrolling at 390 px, and a screenshot. */
async function check(tab: Page, name: string, what: string): Promise<void> {
  await accessible(tab, what);
  await fitsWidth(tab, 390, what);
  await shot(tab, `companion-${name}`);
}

const cameraTracks = (tab: Page) =>
  tab.evaluate(() => (window as unknown as { cameraTracks: MediaStreamTrack[] }).cameraTracks.map((track) => track.readyState));

before(async () => {
  if (skip) return;
  assert.ok(existsSync(appBuild), 'the companion app is not built: run `npm run build` (npm ci does it)');
  p = await startDevicePlatform({ auth: { loginRateLimitPerMinute: 10_000 } });
  const enrolled = await p.enrolledDevice();
  deviceId = enrolled.deviceId;
  device = DeviceClient.fromIdentity(enrolled.dir, { brokerUrl: p.brokerUrl });
  await device.connect();
  await presenceOnline(p.t.platform.db, deviceId);
  await insertConsumer(p.t, CONSUMER, STRONG_PASSWORD);
  // The code as the label printer gets it: from the operators' API, with the link its QR code holds.
  const { token } = await ownerSession(p.t);
  const issued = await p.t.client().post('/api/v1/devices/claim-codes', { deviceIds: [deviceId] }, { token });
  assert.equal(issued.status, 201, issued.text);
  ({ code, link } = issued.body.codes[0]);
  origin = new URL(link).origin;
  assert.equal(link, `${origin}/app/add?product=${p.product}#code=${code}`);
});

after(async () => {
  for (const browser of browsers) await browser.close();
  await device?.stop();
  await p?.close();
  videos.remove();
});

test(
  "the label's link opened by the phone's camera app: the code leaves the address bar at once and is filled in after signing in",
  { skip },
  async () => {
    const tab = await phoneWithCamera();
    const requested: string[] = [];
    tab.on('request', (request) => requested.push(request.url()));
    await tab.goto(link);
    await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(new URL(tab.url()).hash, '', 'the fragment is gone from the address bar before signing in');
    assert.equal(await tab.evaluate(() => location.href.includes('#')), false);
    await signIn(tab);
    await tab.getByRole('heading', { name: 'Add a device' }).waitFor();
    assert.equal(await tab.getByLabel('Claim code').inputValue(), code);
    assert.equal(new URL(tab.url()).search, `?product=${p.product}`);
    assert.equal(new URL(tab.url()).hash, '');
    const collects = tab.getByRole('region', { name: 'What it collects' });
    assert.equal(await collects.getByLabel('Product ID').inputValue(), p.product);
    await collects.getByText('This product does not say what it collects').waitFor();
    const normalized = code.replaceAll('-', '');
    assert.deepEqual(
      requested.filter((url) => url.includes(code) || url.includes(normalized)),
      [],
      'no request names the code (the fragment is sent to no server)',
    );
    await check(tab, 'add-from-label', 'add a device opened from the label');
  },
);

test('without a camera the dialog says so, and the code can still be typed', { skip }, async () => {
  const tab = await phoneWithCamera();
  await signedInOnAddPage(tab);
  await tab.getByRole('button', { name: 'Scan the QR code' }).click();
  const dialog = tab.getByRole('dialog', { name: 'Scan the QR code' });
  await dialog.getByRole('alert').waitFor();
  assert.match((await dialog.getByRole('alert').textContent()) ?? '', /(No camera was found|camera is not allowed).*type the code/);
  await check(tab, 'scan-no-camera', 'the scan dialog without a camera');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await tab.getByLabel('Claim code').fill(code);
  assert.equal(await tab.getByLabel('Claim code').inputValue(), code);
});

for (const attack of [
  {
    name: 'a javascript: link',
    qr: () => `javascript:document.title='owned'//#code=${code}`,
    reason: /leads somewhere else \(javascript:…\)/,
  },
  {
    name: 'a link to another origin',
    qr: () => `https://evil.example/app/add?product=${p.product}#code=${code}`,
    reason: /leads somewhere else \(https:\/\/evil\.example\)/,
  },
]) {
  test(`the attack: a QR code holding ${attack.name} is refused with a reason and never opened`, { skip }, async () => {
    const tab = await phoneWithCamera(attack.qr());
    await signedInOnAddPage(tab);
    const before = tab.url();
    const elsewhere: string[] = [];
    tab.on('request', (request) => void (new URL(request.url()).origin !== origin && elsewhere.push(request.url())));
    tab.on('dialog', (dialog) => void dialog.dismiss().then(() => elsewhere.push(`dialog: ${dialog.message()}`)));
    await tab.getByRole('button', { name: 'Scan the QR code' }).click();
    const dialog = tab.getByRole('dialog', { name: 'Scan the QR code' });
    await dialog.getByText('Point the camera at the QR code').waitFor();
    await dialog.getByRole('alert').waitFor();
    assert.match((await dialog.getByRole('alert').textContent()) ?? '', attack.reason);
    assert.match((await dialog.getByRole('alert').textContent()) ?? '', /it was not opened/);
    if (attack.name.startsWith('a javascript')) await check(tab, 'scan-refused', 'the scan dialog refusing a QR code');
    // Still scanning the same picture for a while: nothing navigates, nothing runs, nothing is filled in.
    await tab.waitForTimeout(1000);
    assert.equal(tab.url(), before);
    assert.equal(await tab.title(), 'My devices');
    assert.deepEqual(elsewhere, []);
    assert.equal(await tab.getByLabel('Claim code').inputValue(), '');
    // Escape closes the dialog, and the camera with it.
    await tab.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(await cameraTracks(tab), ['ended']);
  });
}

test("scanning the label's QR code fills the code in; after the device's presence step the claim succeeds", { skip }, async () => {
  const tab = await phoneWithCamera(link);
  await signedInOnAddPage(tab);
  await tab.getByRole('button', { name: 'Scan the QR code' }).click();
  await tab.getByText('Code read from the QR code.').waitFor();
  assert.equal(await tab.getByRole('dialog', { name: 'Scan the QR code' }).isVisible(), false, 'the dialog closed on reading');
  assert.equal(await tab.getByLabel('Claim code').inputValue(), code);
  assert.deepEqual(await cameraTracks(tab), ['ended'], 'the camera is stopped');
  const asked = await tab.evaluate(() => (window as unknown as { cameraAsked: MediaStreamConstraints[] }).cameraAsked);
  assert.deepEqual(asked, [{ video: { facingMode: 'environment' }, audio: false }], 'the back camera, no microphone');
  // The label also named the product: what it collects is shown.
  const collects = tab.getByRole('region', { name: 'What it collects' });
  await collects.getByText('This product does not say what it collects').waitFor();
  assert.equal(await collects.getByLabel('Product ID').inputValue(), p.product);
  await check(tab, 'scan-read', 'add a device with the code scanned');

  // The code alone does not bind: the device's presence step first.
  await tab.getByRole('button', { name: 'Add device' }).click();
  await tab.getByText('Press the pairing button on the device first').waitFor();
  await device.reportPresence();
  await tab.getByRole('button', { name: 'Add device' }).click();
  await tab.getByRole('heading', { name: 'Now' }).waitFor();
  assert.equal(new URL(tab.url()).pathname, `/app/devices/${deviceId}`);
  await tab.getByText('Owner', { exact: true }).waitFor();
  assert.equal((await p.t.platform.binding.service.operatorView(cliActor(p.org, 'test'), deviceId)).owner?.email, CONSUMER);
});
