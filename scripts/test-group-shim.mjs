// node:test as the bundled tests see it (scripts/bundle-tests.mjs resolves their `node:test` here),
// so several test files can share one process: a group (scripts/test-groups.mjs).
//
// Its exports are live bindings to node's own functions, so a test file run alone calls node:test
// itself (and node reports each test at its own file and line). In a group, the group's entry calls
// `beginFile(name)` before it imports each file: while that file loads (top-level awaits included),
// the bindings record its top-level calls (describe, it, test, before, after…) instead of making
// them. Once every file has loaded, `runFiles()` points the bindings back at node's functions and
// replays each file's calls inside a suite named after the file, so each file's top-level hooks
// apply to its own tests only, as they did in a process of its own, and the files run one after the
// other. Calls made while the tests run (a describe's body, a helper called from a test) go to node.
import * as real from 'node:test';

/** The files of the group, each with the calls recorded while it loaded. */
const files = [];

/** A stand-in for node:test's `name` that records a call into `file` instead of making it. */
function recorder(file, name) {
  const record =
    (variant) =>
    (...args) => {
      file.calls.push({ name, variant, args });
      // What the real ones return at the top level: a promise for test() and it(), nothing for hooks.
      return name === 'test' || name === 'it' ? Promise.resolve() : undefined;
    };
  return Object.assign(record(null), { skip: record('skip'), todo: record('todo'), only: record('only') });
}

// Live bindings: node's own functions, except while a group's file loads. A test file's calls then
// come from its own code, so node:test reports each test at its own file and line.
export let test = real.test;
export let it = real.it;
export let describe = real.describe;
export let suite = real.suite;
export let before = real.before;
export let after = real.after;
export let beforeEach = real.beforeEach;
export let afterEach = real.afterEach;
export const mock = real.mock;
export const run = real.run;
export default real.test;

/** Points every binding at `make(name)`: the recorders of a file, or node's own functions. */
function bind(make) {
  [test, it, describe, suite, before, after, beforeEach, afterEach] = [
    'test',
    'it',
    'describe',
    'suite',
    'before',
    'after',
    'beforeEach',
    'afterEach',
  ].map(make);
}

/** The group's entry: the next module evaluated is the test file `name` (its path in the repository). */
export function beginFile(name) {
  const file = { name, calls: [] };
  files.push(file);
  bind((fn) => recorder(file, fn));
}

/** The group's entry, after every file loaded: each file's tests, in a suite of its own, one file after the other. */
export function runFiles() {
  bind((fn) => real[fn]);
  for (const file of files.splice(0)) {
    real.describe(file.name, () => {
      for (const { name, variant, args } of file.calls) (variant ? real[name][variant] : real[name])(...args);
    });
  }
}
