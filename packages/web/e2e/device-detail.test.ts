/**
 * The console's device page and fleet activity end to end: Debian's Chromium against a real
 * platform (HTTPS, MQTT over mutual TLS, SQLite) and a simulated device on the device SDK
 * (enrolled over EST, connected with its own certificate). The desired state edited as JSON,
 * reviewed as a diff and received by the device; the device's readings drawn as a chart (uPlot,
 * under the platform's CSP with no violation) with its text alternative; a declared command sent
 * from the page reaching the device and its outcome shown; credentials rotated behind a step-up
 * (a wrong code rotates nothing); a quarantine listed in the device's audit trail; the fleet page's
 * rollout, findings and ingest charts. Attacks: markup in a telemetry value and in a reported
 * state value shown as text, a telemetry key with markup refused by the platform, and an auditor
 * (a role without devices:write) refused a command by the API, with the page saying why.
 * axe-core on each state of the page, a screenshot of each (test-artifacts/web/).
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { JsonObject } from '@bulwark/protocol';
import { DeviceClient } from '../../device/src/index.js';
import { startDevicePlatform, type DevicePlatform } from '../../device/src/testing/platform.js';
import { cliActor } from '../../server/src/accounts/roles.js';
import { createOperator, signIn, type TestUser } from '../../server/src/testing/accounts.js';
import { chromiumSkip, type Chromium } from '../../server/src/testing/chromium.js';
import { eventually, presenceOnline } from '../../server/src/testing/mqtt.js';
import { ROLLOUTS_TICKED_BY_TEST, springUpdate } from '../../server/src/testing/rollout-fixtures.js';
import { accessible, firstSignIn, fitsWidth, freshCode, openConsole, shot, totpOf } from './harness.js';

const skip = chromiumSkip("the console's browser tests are");
const MARKUP_VALUE = '<img src=x onerror="window.__xss=1">';
const MARKUP_STATE = '<script>window.__xss=2</script><b>bold</b>';
const MARKUP_KEY = '<img src=x onerror=window.__xss=3>';
const DECLARED = [
  {
    name: 'set-brightness',
    description: 'Sets the display brightness',
    params: [
      { name: 'level', type: 'integer', required: true, description: 'Brightness from 0 to 100' },
      { name: 'fade', type: 'boolean' },
    ],
  },
  { name: 'identify', description: 'Blinks the LED' },
];

let p: DevicePlatform;
let browser: Chromium;
let page: Page;
let base: string;
let deviceId: string;
let device: DeviceClient;
let secret = '';
let auditor: TestUser;
const desiredSeen: JsonObject[] = [];
const commandsSeen: Record<string, unknown>[] = [];
const cspViolations: string[] = [];
const deviceErrors: string[] = [];

const actor = () => cliActor(p.org, 'test');
const deviceUrl = () => `${base}/console/devices/${deviceId}`;

/** A step-up dialog confirmed with a fresh TOTP code. */
async function confirmWithCode(title: string, confirm: string, screenshot?: string): Promise<void> {
  const dialog = page.getByRole('dialog', { name: title });
  await dialog.waitFor();
  await dialog.getByLabel('Authentication code').fill(await freshCode(p.t, secret));
  await accessible(page, `the dialog ${title}`);
  if (screenshot) await shot(page, screenshot);
  await dialog.getByRole('button', { name: confirm, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
}

before(async () => {
  if (skip) return;
  p = await startDevicePlatform({ auth: { loginRateLimitPerMinute: 10_000 }, ...ROLLOUTS_TICKED_BY_TEST });
  base = p.apiUrl;
  await p.t.platform.devices.service.declareCommands(actor(), p.product, DECLARED);

  // The simulated device: follows its desired state (and reports it back), answers set-brightness.
  const enrolled = await p.enrolledDevice();
  deviceId = enrolled.deviceId;
  device = DeviceClient.fromIdentity(enrolled.dir, { brokerUrl: p.brokerUrl });
  device.on('error', (error: Error) => deviceErrors.push(error.message));
  device.on('disconnected', (event: { error?: Error }) => deviceErrors.push(`disconnected: ${event.error?.message ?? ''}`));
  device.onDesired((state) => {
    desiredSeen.push(state);
    device.reportState(state);
  });
  device.onCommand('set-brightness', (params) => {
    commandsSeen.push(params);
    return { status: 'ok', result: { applied: params.level } };
  });
  await device.connect();
  await presenceOnline(p.t.platform.db, deviceId);
  device.reportState({ mode: 'eco', label: MARKUP_STATE });
  // Readings over the last 40 minutes, stamped by the device.
  const now = Date.now();
  device.sendTelemetryBatch(
    Array.from({ length: 20 }, (_, i) => ({ ts: now - (40 - 2 * i) * 60_000, values: { temperature: 20 + (i % 5), humidity: 40 + i } })),
  );
  device.sendTelemetry({ note: MARKUP_VALUE }, now);
  await eventually(async () => (await p.stored(deviceId)) === 21, 10_000, 'the readings are stored');
  // An attack: a value name carrying markup, refused by the platform (names are 1-64 of A-Z a-z 0-9 _ . : -).
  device.sendTelemetry({ [MARKUP_KEY]: 1 }, now);
  await device.drained(10_000);

  // The fleet page's activity: a rollout under way and the findings of a check run.
  await springUpdate(p.t.platform, p.org, 'ROLL', 20);
  await p.t.platform.assessment.service.run(actor(), 'cli');
  auditor = await createOperator(p.t, 'auditor@example.com', 'auditor');

  ({ browser, page } = await openConsole());
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
});

after(async () => {
  await browser?.close();
  await device?.stop();
  await p?.close();
});

test('the fleet page charts the active rollout, open findings by severity and the ingest rate', { skip }, async () => {
  await page.goto(`${base}/console/`);
  secret = await firstSignIn(page, p.t);
  const rollout = page.getByTestId('fleet-rollout').filter({ hasText: 'spring-update' });
  await rollout.waitFor();
  assert.match((await rollout.textContent())!, /0 \/ 20 updated \(0%\), phase 1 of 2/);
  const findings = page.getByRole('img', { name: /^Open findings by severity: critical: \d+, high: \d+/ });
  await findings.waitFor();
  const { findings: open } = await p.t.platform.assessment.service.list(actor(), { state: 'open', limit: 200 });
  const high = open.filter((finding) => finding.severity === 'high').length;
  assert.match((await findings.getAttribute('aria-label'))!, new RegExp(`high: ${high},`), 'the chart counts what the API lists');
  await page.getByTestId('ingest-chart').locator('canvas').first().waitFor();
  assert.equal(await page.getByTestId('ingest-total').textContent(), '21 readings stored in the last hour');
  assert.match((await page.getByTestId('ingest-chart').locator('figcaption').textContent())!, /readings per minute: 0 to \d+, latest/);
  await accessible(page, 'the fleet page with its activity');
  await shot(page, 'fleet-activity');
  for (const width of [1440, 390]) await fitsWidth(page, width, 'the fleet page');
});

test('desired state edited as JSON, reviewed as a diff behind a confirmation, received by the device', { skip }, async () => {
  await page.goto(deviceUrl());
  await page.getByRole('heading', { name: /^Device DEV-/ }).waitFor();
  const state = page.getByRole('region', { name: 'Desired and reported state' });
  await state.getByRole('row', { name: /label/ }).waitFor();
  assert.match((await state.getByRole('row', { name: /label/ }).textContent())!, /<script>window.__xss=2<\/script><b>bold<\/b>/);

  const editor = page.getByLabel('Desired state (JSON)');
  await editor.fill(JSON.stringify({ brightness: 40, schedule: { on: '07:00', off: '23:00' } }, null, 2));
  await page.getByRole('button', { name: 'Review changes…' }).click();
  const dialog = page.getByRole('dialog', { name: /^Send the desired state to DEV-/ });
  await dialog.waitFor();
  const rows = await dialog.getByTestId('diff-row').allTextContents();
  assert.deepEqual(rows, ['brightness—40', 'schedule.off—"23:00"', 'schedule.on—"07:00"']);
  assert.ok(!desiredSeen.some((s) => 'brightness' in s), 'nothing is sent before the confirmation');
  await accessible(page, 'the desired-state diff');
  await shot(page, 'device-desired-diff');
  await dialog.getByRole('button', { name: 'Send desired state' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await eventually(() => desiredSeen.some((s) => s.brightness === 40), 10_000, 'the device receives the desired state');
  assert.deepEqual(desiredSeen.at(-1), { brightness: 40, schedule: { on: '07:00', off: '23:00' } });

  // A second edit removes a key: the diff says so, and the device's state loses it.
  await page.getByRole('button', { name: 'Reload' }).click();
  await state
    .getByRole('row', { name: /brightness/ })
    .filter({ hasText: '40' })
    .waitFor();
  await editor.fill(JSON.stringify({ brightness: 40 }));
  await page.getByRole('button', { name: 'Review changes…' }).click();
  assert.deepEqual(await dialog.getByTestId('diff-row').allTextContents(), ['schedule.off"23:00"(removed)', 'schedule.on"07:00"(removed)']);
  await dialog.getByRole('button', { name: 'Send desired state' }).click();
  await eventually(() => JSON.stringify(desiredSeen.at(-1)) === '{"brightness":40}', 10_000, 'the device loses the removed key');
  assert.equal(await page.evaluate(() => (window as { __xss?: number }).__xss), undefined, 'no markup ran');
});

test('the telemetry chart shows the readings the device sent, with a text alternative, under the CSP', { skip }, async () => {
  const chart = page.getByTestId('telemetry-chart');
  await chart.locator('canvas').first().waitFor();
  const caption = (await chart.locator('figcaption').textContent())!;
  assert.match(caption, /humidity: 40 to 59, latest 59/);
  assert.match(caption, /temperature: 20 to 24, latest 24/);
  await chart.getByText(/as a table/).click();
  const table = chart.getByRole('region', { name: /as a table/ });
  assert.equal(await table.locator('tbody tr').count(), 20, 'one row per minute with readings');
  const latest = page.getByTestId('latest-value').filter({ hasText: 'note' });
  assert.equal(await latest.locator('td').first().textContent(), JSON.stringify(MARKUP_VALUE), 'markup in a value is text');
  assert.equal(await page.getByTestId('latest-value').filter({ hasText: 'img' }).count(), 1, 'only the value carries markup');
  const names = await page.getByTestId('latest-value').locator('th').allTextContents();
  assert.deepEqual(names, ['humidity', 'note', 'temperature'], 'the name with markup was refused, never stored');
  assert.equal(await page.evaluate(() => (window as { __xss?: number }).__xss), undefined);
  assert.equal(await page.locator('img').count(), 0);

  await page.getByLabel('Range').selectOption('24h');
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="telemetry-chart"] .visually-hidden')?.textContent?.includes('15m'),
  );
  assert.match((await chart.locator('figcaption').textContent())!, /temperature: 2\d(\.\d+)? to 2\d/);
  assert.deepEqual(cspViolations, [], 'uPlot draws without breaking the CSP');
  await accessible(page, 'the device page with its chart');
  await shot(page, 'device-telemetry');
});

test('a declared command sent from the page reaches the device and its outcome shows', { skip }, async () => {
  const form = page.getByRole('form', { name: 'Send a command' });
  assert.deepEqual(await form.getByLabel('Command').locator('option').allTextContents(), ['set-brightness', 'identify']);
  await form.getByLabel('level (required)').fill('55');
  await form.getByLabel('fade').check();
  await accessible(page, 'the command form');
  await form.getByRole('button', { name: 'Send command' }).click();
  const outcome = page.getByTestId('command-outcome');
  await outcome
    .filter({ hasText: 'set-brightness: succeeded, result {"applied":55}' })
    .waitFor({ timeout: 15_000 })
    .catch(async (error: Error) => {
      const stored = await p.t.platform.db.selectFrom('device_commands').selectAll().where('device_id', '=', deviceId).execute();
      assert.fail(
        `${error.message}; the page says: ${await outcome.textContent()}; the device ran ${JSON.stringify(commandsSeen)}, ` +
          `is ${device.isConnected ? 'connected' : 'not connected'} (${JSON.stringify(device.stats)}), saw errors ${JSON.stringify(deviceErrors)}; stored: ${JSON.stringify(stored)}`,
      );
    });
  assert.deepEqual(commandsSeen, [{ level: 55, fade: true }]);
  await page.getByTestId('command').filter({ hasText: 'succeeded' }).waitFor();
  await page.getByTestId('device-audit-entry').filter({ hasText: 'device.command_sent' }).waitFor();
  await shot(page, 'device-command');

  await form.getByLabel('level (required)').fill('');
  await form.getByRole('button', { name: 'Send command' }).click();
  await form.getByRole('alert').filter({ hasText: 'level is required' }).waitFor();
  assert.equal(commandsSeen.length, 1);
});

test(
  'credentials rotated behind a step-up (a wrong code rotates nothing), then a quarantine, both in the audit trail',
  { skip },
  async () => {
    const active = () =>
      p.t.platform.db
        .selectFrom('issued_certificates')
        .select('serial')
        .where('device_id', '=', deviceId)
        .where('revoked_at', 'is', null)
        .execute();
    assert.equal((await active()).length, 1);
    await page.getByRole('button', { name: 'Rotate credentials…' }).click();
    const dialog = page.getByRole('dialog', { name: /^Rotate the credentials of DEV-/ });
    await dialog.getByLabel('Authentication code').fill('000000');
    await dialog.getByRole('button', { name: 'Rotate credentials', exact: true }).click();
    await dialog.getByRole('alert').waitFor();
    assert.equal((await active()).length, 1, 'a wrong code rotates nothing');
    await dialog.getByLabel('Authentication code').fill(await freshCode(p.t, secret));
    await accessible(page, 'the rotate dialog');
    await shot(page, 'device-rotate-dialog');
    await dialog.getByRole('button', { name: 'Rotate credentials', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
    const token = (await page.getByTestId('enrollment-token').textContent())!;
    assert.ok(token.length > 20);
    assert.equal((await active()).length, 0, 'every certificate is revoked');
    await eventually(() => deviceErrors.some((message) => /not authorized/.test(message)), 15_000, 'the old certificate is refused');
    await page.getByTestId('device-audit-entry').filter({ hasText: 'device.credentials_rotated' }).waitFor();

    await page.getByRole('button', { name: 'Quarantine…' }).click();
    await confirmWithCode(`Quarantine ${(await p.t.platform.devices.service.get(actor(), deviceId)).serial}?`, 'Quarantine');
    await page.getByTestId('status').filter({ hasText: 'quarantined' }).waitFor();
    const trail = page.getByTestId('device-audit-entry');
    await trail.filter({ hasText: 'device.status_changed' }).filter({ hasText: 'active → quarantined' }).waitFor();
    const { entries } = await p.t.platform.audit.query({ organizationId: p.org, targetId: deviceId, limit: 20 });
    assert.deepEqual(
      await trail.locator('td:first-child').allTextContents(),
      entries.map((entry) => String(entry.seq)),
      "the trail is the audit log's entries about this device, newest first",
    );
    assert.ok(entries.every((entry) => entry.target.id === deviceId));
    await accessible(page, 'the device page after the actions');
    await shot(page, 'device-audit-trail');
    for (const width of [1440, 390]) await fitsWidth(page, width, 'the device page');
  },
);

test('an auditor cannot send a command: the API refuses it, and the page says why', { skip }, async () => {
  const bearer = await signIn(p.t, auditor);
  const refused = await p.t.client().post(`/api/v1/devices/${deviceId}/commands`, { name: 'identify' }, { token: bearer });
  assert.equal(refused.status, 403);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Organization').fill(p.t.org);
  await page.getByLabel('Email').fill(auditor.email);
  await page.getByLabel('Password').fill(auditor.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const enrol = page.locator('code.secret');
  await Promise.race([enrol.first().waitFor(), page.getByRole('heading', { name: 'Fleet' }).waitFor()]);
  if (await enrol.count()) {
    auditor.secret = (await enrol.first().textContent())!;
    await page.getByLabel('Authentication code').fill(await totpOf(p.t, auditor.secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('button', { name: /continue/ }).click();
  }
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.goto(deviceUrl());
  const form = page.getByRole('form', { name: 'Send a command' });
  await form.getByLabel('Command').selectOption('identify');
  const before = commandsSeen.length;
  await form.getByRole('button', { name: 'Send command' }).click();
  const alert = form.getByRole('alert');
  await alert.waitFor();
  assert.match((await alert.textContent())!, /devices:write/);
  assert.equal(commandsSeen.length, before);
  assert.equal(
    (await p.t.platform.db.selectFrom('device_commands').select('id').where('device_id', '=', deviceId).execute()).length,
    1,
    'only the owner’s command is on record',
  );
  await accessible(page, 'the refused command');
  await shot(page, 'device-command-refused');
});
