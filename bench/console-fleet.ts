/**
 * The console's fleet page at scale: loads 100,000 devices, signs an operator in through the page
 * in Debian's Chromium, then loads the fleet page again and again with the browser cache off and
 * prints, from the browser's own clock (performance.now() since the navigation began), when the
 * fleet's figures and charts were on screen and when the activity below them (rollouts, findings,
 * ingest rate) was. Beside them, measured in the same run: the security page, which boots the same
 * app and session without any fleet query (the bare cost of the page), and GET /fleet/summary over
 * HTTPS from Node (the bare cost of the data). Issue 16's aim: the fleet page under 1 s.
 *
 *   node --conditions=source --import tsx bench/console-fleet.ts [--pg] [--devices 100000] [--runs 7]
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { launchChromium } from '../packages/server/src/testing/chromium.js';
import { loadFleet } from './support/fleet.js';
import { machine, median, request, table } from './support/measure.js';
import { BENCH_PASSWORD, createOperators, startBenchPlatform } from './support/platform.js';

const AIM_MS = 1000;
const { values } = parseArgs({
  options: {
    pg: { type: 'boolean', default: false },
    devices: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '7' },
  },
});
const DEVICES = Number(values.devices);
const RUNS = Number(values.runs);
if (!Number.isInteger(DEVICES) || DEVICES < 1 || !Number.isInteger(RUNS) || RUNS < 1) {
  console.error('--devices and --runs take positive integers');
  process.exit(2);
}

const bench = await startBenchPlatform({ postgres: values.pg ?? false });
const browser = await launchChromium({ context: { ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } } });
try {
  const loadStart = performance.now();
  await loadFleet(bench.platform, bench.admin, DEVICES);
  console.log(
    `${DEVICES.toLocaleString('en')} devices loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s (${bench.engine})`,
  );
  const [email] = await createOperators(bench, 1);

  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(`${bench.baseUrl}/console/`);
  await page.getByLabel('Organization').fill(bench.org);
  await page.getByLabel('Email').fill(email!);
  await page.getByLabel('Password').fill(BENCH_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  const shown = await page.getByTestId('total').textContent();
  if (shown !== DEVICES.toLocaleString('en')) throw new Error(`the fleet page shows ${shown} devices, not ${DEVICES}`);
  // Every load fetches the whole build again: the cold case, not a returning operator's cache.
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });

  const login = await request(`${bench.baseUrl}/api/v1/auth/login`, bench.ca, {
    method: 'POST',
    body: { organization: bench.org, email, password: BENCH_PASSWORD },
  });
  const token = String(login.body?.token);

  /** Milliseconds from the navigation's start to the selector's element being there, by the page's clock. */
  const loadUntil = async (path: string, selectors: string[]): Promise<number[]> => {
    await page.goto(`${bench.baseUrl}/console${path}`);
    const at: number[] = [];
    for (const selector of selectors) {
      await page.locator(selector).first().waitFor();
      at.push(await page.evaluate(() => performance.now()));
    }
    return at;
  };
  const fleet: number[][] = [];
  const security: number[] = [];
  const api: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    fleet.push(await loadUntil('/', ['[data-testid=total]', 'figure, [role=img]', '[data-testid=ingest-total]']));
    security.push((await loadUntil('/security', ['h1:has-text("Account security")']))[0]!);
    const start = performance.now();
    const summary = await request(`${bench.baseUrl}/api/v1/fleet/summary`, bench.ca, { token });
    if (summary.status !== 200) throw new Error(`GET /fleet/summary answered ${summary.status}`);
    api.push(performance.now() - start);
  }
  await settle(page);

  console.log(
    `\nConsole fleet page, ${DEVICES.toLocaleString('en')} devices (${bench.engine}), ${RUNS} loads each, cache off; ${machine()}`,
  );
  const p50 = (i: number) => median(fleet.map((f) => f[i]!));
  const bare = median(security);
  table(
    ['measure', 'p50 ms', 'max ms', 'vs security page'],
    [
      ['fleet figures on screen', p50(0), Math.max(...fleet.map((f) => f[0]!)), `${(p50(0) / bare).toFixed(2)}×`],
      ['fleet charts drawn', p50(1), Math.max(...fleet.map((f) => f[1]!)), `${(p50(1) / bare).toFixed(2)}×`],
      ['activity (rollouts, findings, ingest)', p50(2), Math.max(...fleet.map((f) => f[2]!)), `${(p50(2) / bare).toFixed(2)}×`],
      ['baseline: security page (same app, no fleet query)', bare, Math.max(...security), '1.00×'],
      ['baseline: GET /fleet/summary from Node', median(api), Math.max(...api), '—'],
    ],
  );
  const verdict = p50(1) <= AIM_MS ? 'met' : 'NOT met';
  console.log(`aim: fleet charts drawn ≤ ${AIM_MS} ms at p50: ${verdict}`);
} finally {
  await browser.close();
  await bench.close();
}

/** Lets the last page's requests finish before the platform closes under them. */
async function settle(page: Page): Promise<void> {
  await page.goto('about:blank');
}
