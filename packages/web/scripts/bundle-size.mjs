#!/usr/bin/env node
// Prints the size of each face of the web build (the console in dist/, the companion app in
// dist/app/): raw and gzip, per file and in all, and fails the build when a face's JavaScript or
// CSS is over its budget, so a heavy dependency cannot slip in unnoticed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Budgets per face, gzip bytes: all its JavaScript together, all its CSS together. */
export const BUDGETS = {
  console: { dir: '../dist/assets/', js: 150 * 1024, css: 20 * 1024 },
  app: { dir: '../dist/app/assets/', js: 100 * 1024, css: 10 * 1024 },
};

let over = false;
for (const [face, budget] of Object.entries(BUDGETS)) {
  const dir = new URL(budget.dir, import.meta.url).pathname;
  const totals = { js: 0, css: 0 };
  for (const name of readdirSync(dir).sort()) {
    const kind = name.endsWith('.js') ? 'js' : name.endsWith('.css') ? 'css' : null;
    if (!kind) continue;
    const bytes = readFileSync(join(dir, name));
    const gzip = gzipSync(bytes, { level: 9 }).length;
    totals[kind] += gzip;
    console.log(
      `  ${face.padEnd(8)} ${name.padEnd(32)} ${(statSync(join(dir, name)).size / 1024).toFixed(1).padStart(7)} kB  gzip ${(gzip / 1024).toFixed(1).padStart(6)} kB`,
    );
  }
  for (const kind of ['js', 'css']) {
    const line = `${face} ${kind.toUpperCase()}: ${(totals[kind] / 1024).toFixed(1)} kB gzip (budget ${budget[kind] / 1024} kB)`;
    if (totals[kind] > budget[kind]) {
      over = true;
      console.error(`${line}: OVER BUDGET`);
    } else console.log(line);
  }
}
if (over) process.exit(1);
