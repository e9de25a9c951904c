// The compiled test files (scripts/compiled-tests.mjs, .test-build/), bundled with the npm packages
// they load into .test-bundle/, so a test process loads a few dozen files instead of about 2,300.
//
// Every test process imported the platform module by module: about 1,500 of our compiled modules
// and 780 CommonJS files of npm packages, each resolved, read and compiled by node's loaders, 2 to
// 3 s of CPU before its first test, in about 200 test processes a run. One esbuild run takes every
// test file as an entry point and splits what they share into chunks, so each module is in the
// bundle once and a process holds one copy of every module, as before.
//
// Paths: each bundled test file lies at its own path under .test-bundle/, and the rest of
// .test-build/ is linked in beside it (as .test-build/ links the repository), so a test finds its
// fixtures, the docs and the web build where it did. The shared chunks lie in
// packages/server/src/chunks/; the few modules that find files from their own location do so by
// walking up (package-root.ts, testing/repository.ts), never by counting `..`.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForNode, EXTERNAL as CLI_EXTERNAL, manifestIsCurrent } from './bundle-cli.mjs';
import { BUILD_DIR, mirror } from './compiled-tests.mjs';

export const BUNDLE_DIR = '.test-bundle';
/** Where the groups' entries lie, in the compiled tests and in the bundle (scripts/test-groups.mjs). */
export const GROUPS_DIR = 'test-groups';
const CHUNKS = 'packages/server/src/chunks';
const MANIFEST = 'inputs.json';

// Left to node at run time: what the CLI's bundle leaves out (each for a reason given there), and the
// tools the tests drive, each a large package that loads its own files at run time.
const EXTERNAL = [...CLI_EXTERNAL, 'playwright-core', 'esbuild', 'tsx', 'eslint', 'typescript', 'vite', 'prettier'];

function testFiles(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    // A link left from a source since deleted (the mirror does not prune) names no file: skip it.
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat === undefined) continue;
    if (stat.isDirectory()) testFiles(path, out);
    else if (name.endsWith('.test.js') || name.endsWith('.faults.js')) out.push(path);
  }
  return out;
}

/**
 * Bundles the compiled tests (buildCompiledTests must have run) and returns the bundle's root, or
 * null (with the reason printed) so the caller runs the compiled files unbundled.
 */
export async function bundleTests(root, groups = []) {
  const from = join(root, BUILD_DIR);
  const out = join(root, BUNDLE_DIR);
  const started = Date.now();
  writeGroupEntries(from, groups);
  const entries = [...testFiles(join(from, 'packages')), ...groups.map((group) => join(from, group.entry))];
  // Stale when a file it was made from changed, or when a test file is new: the inputs list every
  // test file bundled, so one missing from them was added since (it would run unbundled).
  if (!manifestIsCurrent(join(out, MANIFEST), from) || !bundles(join(out, MANIFEST), from, entries)) {
    const staging = `${out}.${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    try {
      const result = await bundleForNode({
        absWorkingDir: from,
        entryPoints: entries,
        outbase: from,
        outdir: staging,
        chunkNames: `${CHUNKS}/[name]-[hash]`,
        // The workspace's packages resolve to their compiled sources in the mirror (compiled-tests.mjs).
        conditions: ['source'],
        external: EXTERNAL,
        plugins: [groupShim],
        logLevel: 'error',
      });
      const inputs = Object.keys(result.metafile.inputs);
      writeFileSync(join(staging, MANIFEST), JSON.stringify(inputs) + '\n');
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      console.error(`The tests did not bundle; they run compiled, unbundled.\n${error.message}`);
      return null;
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(staging, out);
  }
  mirror(from, out);
  console.log(`Tests bundled into ${relative(root, out)}/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/** The test files' `node:test` is the group shim (scripts/test-group-shim.mjs), which alone imports node's. */
const SHIM = fileURLToPath(new URL('./test-group-shim.mjs', import.meta.url));
const groupShim = {
  name: 'test-group-shim',
  setup(build) {
    build.onResolve({ filter: /^node:test$/ }, ({ importer }) =>
      importer === SHIM ? { path: 'node:test', external: true } : { path: SHIM },
    );
  },
};

/**
 * Writes each group's entry (scripts/test-groups.mjs) into the compiled tests, and removes the entries
 * of groups no longer made. An entry that did not change is not rewritten, so the bundle stays current.
 */
function writeGroupEntries(from, groups) {
  const dir = join(from, GROUPS_DIR);
  mkdirSync(dir, { recursive: true });
  const wanted = new Set(groups.map((group) => group.entry));
  for (const name of readdirSync(dir)) if (!wanted.has(`${GROUPS_DIR}/${name}`)) rmSync(join(dir, name));
  for (const group of groups) {
    const path = join(from, group.entry);
    const text = groupEntry(group.files);
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileSync(path, text);
  }
}

/** A group's entry: each file announced to the shim, then loaded (top-level awaits included), then all run. */
function groupEntry(files) {
  const lines = [`import { beginFile, runFiles } from ${JSON.stringify(SHIM)};`];
  for (const file of files) {
    lines.push(`beginFile(${JSON.stringify(file)});`, `await import(${JSON.stringify(`../${file.replace(/\.ts$/, '.js')}`)});`);
  }
  lines.push('runFiles();');
  return lines.join('\n') + '\n';
}

/** Whether every one of `entries` (absolute paths under `base`) is among the inputs of the bundle's manifest. */
function bundles(manifest, base, entries) {
  const inputs = new Set(JSON.parse(readFileSync(manifest, 'utf8')));
  return entries.every((entry) => inputs.has(relative(base, entry)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  if ((await bundleTests(root)) === null) process.exit(1);
}
