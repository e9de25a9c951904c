/**
 * The test runner's groups (scripts/test-groups.mjs): several test files in one process through the
 * node:test shim (scripts/test-group-shim.mjs), each file's top-level hooks kept to its own tests,
 * and every test reported under its own file by scripts/file-times-reporter.mjs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPOSITORY } from './repository.js';

const root = REPOSITORY;
const shim = pathToFileURL(join(root, 'scripts/test-group-shim.mjs')).href;
const reporter = join(root, 'scripts/file-times-reporter.mjs');
/** The environment of a test runner of its own (NODE_TEST_CONTEXT would make it report to this one). */
const { NODE_TEST_CONTEXT: _parent, ...env } = process.env;

/** A test file as a bundled one is: its node:test is the shim. */
const fileA = `
import { before, after, describe, it } from ${JSON.stringify(shim)};
import assert from 'node:assert/strict';
globalThis.order ??= [];
let ready = 'no';
before(() => { ready = 'a'; globalThis.order.push('a:before'); });
after(() => globalThis.order.push('a:after'));
describe('a suite', () => {
  it('sees its own before hook', () => { assert.equal(ready, 'a'); globalThis.order.push('a:test'); });
  it('runs its second test', () => { globalThis.order.push('a:test2'); });
});
`;
const fileB = `
import { before, test } from ${JSON.stringify(shim)};
import assert from 'node:assert/strict';
let ready = 'no';
await new Promise((resolve) => setTimeout(resolve, 20));
before(() => { ready = 'b'; globalThis.order.push('b:before'); });
test('a top-level test after a top-level await', () => { assert.equal(ready, 'b'); globalThis.order.push('b:test'); });
test('fails, and is counted for b', () => { assert.deepEqual(globalThis.order, ['a:before', 'a:test', 'a:test2', 'a:after', 'b:before', 'b:test']); throw new Error('planted'); });
`;
const group = (a: string, b: string) => `
import { beginFile, runFiles } from ${JSON.stringify(shim)};
beginFile('packages/x/a.test.ts');
await import(${JSON.stringify(pathToFileURL(a).href)});
beginFile('packages/x/b.test.ts');
await import(${JSON.stringify(pathToFileURL(b).href)});
runFiles();
`;

describe('test groups', () => {
  it("runs two files in one process, one after the other, each with its own hooks, and reports each file's tests under its name", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-test-groups-'));
    try {
      const a = join(dir, 'a.test.mjs');
      const b = join(dir, 'b.test.mjs');
      const entry = join(dir, 'group-01.test.mjs');
      writeFileSync(a, fileA);
      writeFileSync(b, fileB);
      writeFileSync(entry, group(a, b));
      const report = join(dir, 'files.json');
      const run = spawnSync(
        process.execPath,
        [
          '--test',
          `--test-reporter=${reporter}`,
          `--test-reporter-destination=${report}`,
          '--test-reporter=tap',
          '--test-reporter-destination=stdout',
          entry,
        ],
        { encoding: 'utf8', env },
      );
      assert.equal(run.status, 1, 'the planted failure fails the run');
      // The planted failure's own assertion held: b ran after a's after hook, its before hook before its tests.
      assert.match(run.stdout, /planted/);
      assert.doesNotMatch(run.stdout, /Expected values to be strictly deep-equal/);
      const files = JSON.parse(readFileSync(report, 'utf8')) as Record<string, { tests: { passed: number; failed: number } }>;
      assert.deepEqual(files['packages/x/a.test.ts']?.tests, { passed: 2, failed: 0, skipped: 0 });
      assert.deepEqual(files['packages/x/b.test.ts']?.tests, { passed: 1, failed: 1, skipped: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes every call straight to node:test in a file run alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-test-groups-'));
    try {
      const a = join(dir, 'a.test.mjs');
      writeFileSync(a, fileA);
      const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', a], { encoding: 'utf8', env });
      assert.equal(run.status, 0, run.stdout);
      assert.match(run.stdout, /# pass 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('groups short files, first fit and longest first, and keeps long files, the listed ones and those loading a PKCS#11 module alone', async () => {
    type Group = { entry: string; files: string[] };
    const { groupTestFiles } = (await import(pathToFileURL(join(root, 'scripts/test-groups.mjs')).href)) as {
      groupTestFiles: (files: string[], expected: (file: string) => number) => Group[];
    };
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-test-groups-'));
    try {
      const seconds: Record<string, number> = { long: 31, a: 25, b: 20, c: 14, d: 10, token: 5, e: 2 };
      const file = (name: string) => join(dir, `${name}.test.ts`);
      for (const name of Object.keys(seconds))
        writeFileSync(file(name), name === 'token' ? "const module = '/usr/lib/softhsm/libsofthsm2.so';" : '');
      const overload = 'packages/server/src/transport/mqtt/overload.test.ts';
      const files = [...Object.keys(seconds).map(file), overload];
      const groups = groupTestFiles(files, (f) => (f === overload ? 1 : seconds[f.slice(dir.length + 1, -'.test.ts'.length)]!));
      assert.deepEqual(
        groups.map((g) => g.files),
        [
          [file('a'), file('b'), file('c')],
          [file('d'), file('e')],
        ],
      );
      assert.match(groups[0]!.entry, /group-01\.test\.js$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
