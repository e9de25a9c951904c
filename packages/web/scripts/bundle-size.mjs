#!/usr/bin/env node
// Prints the size of each face of the web build (the console in dist/, the companion app in
// dist/app/): raw and gzip, per file and in all, and fails the build when a face's JavaScript or
// CSS is over its budget, so a heavy dependency cannot slip in unnoticed. A face's JavaScript has
// two budgets: what its index.html loads at first (every page pays it), and each chunk loaded on
// demand (uPlot's, with the first chart; the companion app's QR reader, jsQR, with the first scan
// on a browser without BarcodeDetector), which a page loads one at a time.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Budgets per face, gzip bytes: the JavaScript loaded first, each chunk of JavaScript loaded on demand, all its CSS together. */
export const BUDGETS = {
  console: { dir: '../dist/assets/', js: 125 * 1024, lazyJs: 25 * 1024, css: 20 * 1024 },
  app: { dir: '../dist/app/assets/', js: 100 * 1024, lazyJs: 25 * 1024, css: 10 * 1024 },
};
const LABELS = { js: 'JS loaded first', lazyJs: 'largest chunk of JS loaded on demand', css: 'CSS' };

let over = false;
for (const [face, budget] of Object.entries(BUDGETS)) {
  const dir = new URL(budget.dir, import.meta.url).pathname;
  const first = readFileSync(join(dir, '../index.html'), 'utf8');
  const totals = { js: 0, lazyJs: 0, css: 0 };
  for (const name of readdirSync(dir).sort()) {
    const kind = name.endsWith('.js') ? (first.includes(`/assets/${name}`) ? 'js' : 'lazyJs') : name.endsWith('.css') ? 'css' : null;
    if (!kind) continue;
    const bytes = readFileSync(join(dir, name));
    const gzip = gzipSync(bytes, { level: 9 }).length;
    totals[kind] = kind === 'lazyJs' ? Math.max(totals[kind], gzip) : totals[kind] + gzip;
    console.log(
      `  ${face.padEnd(8)} ${name.padEnd(32)} ${(statSync(join(dir, name)).size / 1024).toFixed(1).padStart(7)} kB  gzip ${(gzip / 1024).toFixed(1).padStart(6)} kB`,
    );
  }
  for (const kind of ['js', 'lazyJs', 'css']) {
    const line = `${face} ${LABELS[kind]}: ${(totals[kind] / 1024).toFixed(1)} kB gzip (budget ${budget[kind] / 1024} kB)`;
    if (totals[kind] > budget[kind]) {
      over = true;
      console.error(`${line}: OVER BUDGET`);
    } else console.log(line);
  }
}
if (over) process.exit(1);
