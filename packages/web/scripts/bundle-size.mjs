#!/usr/bin/env node
// Prints the built console's size (raw and gzip, per file and in all) and fails the build when the
// JavaScript or the CSS is over its budget, so a heavy dependency cannot slip in unnoticed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Budgets, gzip bytes: all JavaScript together, all CSS together. */
export const BUDGET = { js: 150 * 1024, css: 20 * 1024 };

const dir = new URL('../dist/assets/', import.meta.url).pathname;
const totals = { js: 0, css: 0 };
for (const name of readdirSync(dir).sort()) {
  const kind = name.endsWith('.js') ? 'js' : name.endsWith('.css') ? 'css' : null;
  if (!kind) continue;
  const bytes = readFileSync(join(dir, name));
  const gzip = gzipSync(bytes, { level: 9 }).length;
  totals[kind] += gzip;
  console.log(
    `  ${name.padEnd(32)} ${(statSync(join(dir, name)).size / 1024).toFixed(1).padStart(7)} kB  gzip ${(gzip / 1024).toFixed(1).padStart(6)} kB`,
  );
}
let over = false;
for (const kind of ['js', 'css']) {
  const line = `console ${kind.toUpperCase()}: ${(totals[kind] / 1024).toFixed(1)} kB gzip (budget ${BUDGET[kind] / 1024} kB)`;
  if (totals[kind] > BUDGET[kind]) {
    over = true;
    console.error(`${line}: OVER BUDGET`);
  } else console.log(line);
}
if (over) process.exit(1);
