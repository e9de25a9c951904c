#!/usr/bin/env node
// Runs every *.test.ts under packages/ (and bench smoke tests) with node's test runner and tsx.
// Node 20's runner takes no glob patterns, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const files = walk(join(root, 'packages')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  // A test file that hangs fails after 15 minutes instead of holding CI until its own timeout
  // (the timeout applies to each file as a whole: the slowest, CLI ceremonies, take 5 minutes under load).
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=4', '--test-timeout=900000', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
