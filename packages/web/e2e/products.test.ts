/**
 * The console's products page end to end: Debian's Chromium against a real platform (HTTPS,
 * SQLite). The owner picks a product, declares its commands as JSON from the keyboard behind a
 * confirmation (the platform then holds exactly that declaration, audited), a wrong declaration
 * (a command declared twice) is refused in the dialog with the platform's message and nothing is written,
 * text that is not JSON never reaches the platform, and the declaration is withdrawn behind a
 * confirmation. An auditor (no devices:write) reads the declaration and is offered no form.
 * Markup in a command's description is shown as text. axe-core on each state, no sideways scroll
 * at 1440, 1024 and 390 px, screenshots to test-artifacts/web/ (products-*.png).
 *
 * Needs /usr/bin/chromium (.ci/run installs it): without it the file skips, except in CI, where it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { cliActor } from '../../server/src/accounts/roles.js';
import { createOperator, type TestUser } from '../../server/src/testing/accounts.js';
import { chromiumSkip, type Chromium } from '../../server/src/testing/chromium.js';
import { organizationIdOf } from '../../server/src/testing/devices.js';
import { ENGINES } from '../../server/src/testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../../server/src/testing/server.js';
import { accessible, firstSignIn, fitsWidth, openConsole, shot } from './harness.js';

const skip = chromiumSkip("the console's browser tests are");
const MARKUP = '<img src=x onerror="window.__xss=1">';
const DECLARED = [
  {
    name: 'unlock',
    description: `Opens the bolt ${MARKUP}`,
    params: [{ name: 'seconds', type: 'integer', required: true, description: 'How long it stays open' }],
  },
  { name: 'identify', description: 'Blinks the LED', params: [] },
];

let t: TestPlatform;
let browser: Chromium;
let page: Page;
let base: string;
let lockId: string;
let auditor: TestUser;

const declared = async () =>
  (await t.platform.devices.service.listProducts(cliActor(await organizationIdOf(t.platform, t.org), 'test'))).find((p) => p.id === lockId)!
    .commands ?? null;

/** Replaces the declaration field's text from the keyboard. */
async function typeDeclaration(text: string): Promise<void> {
  await page.getByLabel('Declaration (JSON)').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

before(async () => {
  if (skip) return;
  t = await startTestPlatform(ENGINES[0]!, { auth: { loginRateLimitPerMinute: 10_000 } });
  base = `https://localhost:${t.server.port}`;
  const actor = cliActor(await organizationIdOf(t.platform, t.org), 'test');
  await t.platform.devices.service.createProduct(actor, { name: 'Kettle' });
  lockId = (await t.platform.devices.service.createProduct(actor, { name: 'Lock' })).id;
  auditor = await createOperator(t, 'auditor@example.com', 'auditor');
  ({ browser, page } = await openConsole());
});

after(async () => {
  await browser?.close();
  await t?.close();
});

test("the owner declares a product's commands from the keyboard behind a confirmation", { skip }, async () => {
  await page.goto(`${base}/console/`);
  await firstSignIn(page, t);
  await page.getByRole('link', { name: 'Products' }).click();
  await page.getByRole('heading', { name: 'Products', level: 1 }).waitFor();
  await page.getByLabel('Product').focus();
  await page.getByLabel('Product').selectOption({ label: 'Lock' });
  await page.getByRole('heading', { name: 'Commands of Lock' }).waitFor();
  await page.getByTestId('no-declaration').waitFor();
  await accessible(page, 'the products page without a declaration');

  await typeDeclaration(JSON.stringify(DECLARED, null, 2));
  await page.getByRole('button', { name: 'Declare commands…' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Declare the commands of Lock?' });
  await dialog.waitFor();
  await dialog.getByText('Its devices then take only unlock, identify').waitFor();
  await accessible(page, 'the declare dialog');
  await shot(page, 'products-declare');
  await dialog.getByRole('button', { name: 'Declare commands', exact: true }).focus();
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await page.getByText('Declared: unlock, identify.').waitFor();
  assert.equal(await page.getByTestId('declared-command').count(), 2);
  await page.getByTestId('declared-command').filter({ hasText: 'seconds: integer (required)' }).waitFor();
  assert.deepEqual(await declared(), DECLARED, 'the platform holds the declaration');
  const [audited] = (await t.platform.audit.query({ action: 'product.commands_declared' })).entries;
  assert.deepEqual(audited?.details.commands, ['unlock', 'identify']);

  // The description's markup is text, not an element.
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
  await page.getByText(MARKUP).waitFor();
  await accessible(page, 'the products page with a declaration');
  await shot(page, 'products-declared');
  for (const width of [1024, 390]) await fitsWidth(page, width, 'the products page');
});

test(
  "a wrong declaration is refused whole with the platform's message; text that is not JSON is caught on the page",
  { skip },
  async () => {
    const twice = { name: 'identify', description: 'Blinks the LED', params: [] };
    await typeDeclaration(JSON.stringify([DECLARED[0], twice, twice]));
    await page.getByRole('button', { name: 'Declare commands…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Declare the commands of Lock?' });
    await dialog.getByRole('button', { name: 'Declare commands', exact: true }).click();
    await dialog.getByRole('alert').filter({ hasText: 'The command "identify" is declared twice' }).waitFor();
    await accessible(page, 'the refused declaration');
    await shot(page, 'products-refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(await declared(), DECLARED, 'nothing was written');

    await typeDeclaration('[{"name": ');
    await page.getByRole('button', { name: 'Declare commands…' }).click();
    await page.getByRole('alert').filter({ hasText: 'Not a declaration' }).waitFor();
    assert.equal(await page.getByRole('dialog').count(), 0, 'no dialog for text that is not JSON');
  },
);

test('the declaration withdrawn behind a confirmation; an auditor reads it and is offered no form', { skip }, async () => {
  await page.getByRole('button', { name: 'Withdraw the declaration…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Withdraw the commands of Lock?' });
  await accessible(page, 'the withdraw dialog');
  await dialog.getByRole('button', { name: 'Withdraw', exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByText('Declaration withdrawn.').waitFor();
  await page.getByTestId('no-declaration').waitFor();
  assert.equal(await declared(), null);

  await t.platform.devices.service.declareCommands(cliActor(await organizationIdOf(t.platform, t.org), 'test'), lockId, DECLARED);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Organization').fill(t.org);
  await page.getByLabel('Email').fill(auditor.email);
  await page.getByLabel('Password').fill(auditor.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.getByRole('link', { name: 'Products' }).click();
  await page.getByLabel('Product').selectOption({ label: 'Lock' });
  assert.equal(await page.getByTestId('declared-command').count(), 2, 'the auditor reads the declaration');
  assert.equal(await page.getByRole('form', { name: 'Declare the commands of Lock' }).count(), 0, 'and is offered no form');
  await accessible(page, "the auditor's products page");
  await shot(page, 'products-auditor');
});
