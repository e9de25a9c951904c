/**
 * What the console's browser tests share: Chromium opened on a console-sized window (the
 * platform's test certificate accepted), axe-core run on the page, screenshots to
 * test-artifacts/web/, TOTP codes on the platform's clock, and the owner's first sign-in
 * through the pages (one-time password, forced change, TOTP enrolment, recovery codes).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { generate } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, launchChromium, trustServerKey, type Chromium } from '../../server/src/testing/chromium.js';
import { ENGINES } from '../../server/src/testing/engines.js';
import { REPOSITORY } from '../../server/src/testing/repository.js';
import { STRONG_PASSWORD, startTestPlatform, type TestPlatform } from '../../server/src/testing/server.js';

const root = REPOSITORY;
export const artifacts = join(root, 'test-artifacts/web');
const consoleBuild = join(root, 'packages/web/dist/index.html');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Chromium with one page at 1440×900 that accepts the test platform's certificate. */
export async function openConsole(): Promise<{ browser: Chromium; page: Page }> {
  assert.ok(existsSync(consoleBuild), 'the console is not built: run `npm run build` (npm ci does it)');
  mkdirSync(artifacts, { recursive: true });
  const browser = await launchChromium({ context: { ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } } });
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  return { browser, page };
}

/**
 * A platform (SQLite, sign-in rate limits out of the way) serving both built web faces, and a
 * Chromium for several contexts that trusts its server key by pin (the pages are secure contexts,
 * as WebAuthn needs). `config` adds to the platform's configuration (e.g. `http` with a fixed port and `publicUrl`, the OAuth issuer).
 */
export async function startWebPlatform(config: Record<string, unknown> = {}): Promise<{ t: TestPlatform; base: string; browser: Browser }> {
  for (const build of ['packages/web/dist/index.html', 'packages/web/dist/app/index.html'])
    assert.ok(existsSync(join(root, build)), 'the web faces are not built: run `npm run build` (npm ci does it)');
  const t = await startTestPlatform(ENGINES[0]!, { auth: { loginRateLimitPerMinute: 10_000 }, ...config });
  const browser = await launchBrowser([await trustServerKey(t.server.port, t.ca)]);
  return { t, base: `https://localhost:${t.server.port}`, browser };
}

/** The console's sign-in form: organization, email and password, sent. */
export async function consoleSignIn(page: Page, organization: string, email: string, password: string): Promise<void> {
  // Exact: until the sign-in page renders, the page left behind may hold other labels that begin with
  // "Organization" (the passkey policy's card and dialog), and a loose match would fail on two elements.
  await page.getByLabel('Organization', { exact: true }).fill(organization);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** axe-core injected through the DevTools protocol (the CSP allows no inline script), serious and critical violations only. */
export async function accessible(page: Page, what: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(`${axeSource};0`);
  const violations = await page.evaluate(async () => {
    type Violation = { id: string; impact: string | null; nodes: { target: string[] }[] };
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: Violation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility violations on ${what}`);
}

/** The current TOTP code for `secret` on the platform's clock. */
export function totpOf(t: TestPlatform, secret: string): Promise<string> {
  return generate({ secret, epoch: Math.floor(t.clock.now() / 1000) });
}

/** Each step in the console that takes a code may not reuse the last one: move to the next time step. */
export async function freshCode(t: TestPlatform, secret: string): Promise<string> {
  t.clock.advance(30_000);
  return totpOf(t, secret);
}

/**
 * The owner's first sign-in through the pages, from the sign-in form to the fleet page;
 * `onStep` runs at each step (checks, screenshots). Returns the TOTP secret enrolled.
 */
export async function firstSignIn(
  page: Page,
  t: TestPlatform,
  onStep: (step: 'sign-in' | 'password-change' | 'mfa-enrolment') => Promise<void> = async () => undefined,
): Promise<string> {
  await page.getByLabel('Organization').fill(t.org);
  await page.getByLabel('Email').fill(t.owner.email);
  await page.getByLabel('Password').fill(t.owner.oneTimePassword);
  await onStep('sign-in');
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.getByLabel('New password', { exact: true }).fill(STRONG_PASSWORD);
  await page.getByLabel('Repeat the new password').fill(STRONG_PASSWORD);
  await onStep('password-change');
  await page.getByRole('button', { name: 'Change password' }).click();

  const secret = (await page.locator('code.secret').first().textContent())!;
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await page.getByLabel('Authentication code').fill(await totpOf(t, secret));
  await onStep('mfa-enrolment');
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Recovery codes' }).waitFor();
  await page.getByRole('button', { name: /continue/ }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  return secret;
}

/** Fails when the page scrolls sideways at `width` px, naming the widest element that sticks out. */
export async function fitsWidth(page: Page, width: number, what: string): Promise<void> {
  const previous = page.viewportSize()!;
  await page.setViewportSize({ width, height: 900 });
  const overflow = await page.evaluate(() => {
    const over = document.documentElement.scrollWidth - window.innerWidth;
    if (over <= 0) return null;
    const culprit = Array.from(document.querySelectorAll('body *'))
      .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
      .map((element) => `${element.tagName.toLowerCase()}.${element.className}`)
      .slice(-3);
    return `${over} px (${culprit.join(', ')})`;
  });
  await page.setViewportSize(previous);
  assert.equal(overflow, null, `${what} scrolls sideways at ${width} px`);
}
