// Which test files share a process in a whole run (scripts/test.mjs).
//
// Each test process pays a fixed cost before its first test: loading the bundle (0.5–0.7 s of CPU)
// and, for a file that starts a platform, a first start about 1 s dearer than the next one (the
// password dictionaries, code not yet compiled by V8). Measured on this machine: an empty test file
// importing the platform's test harness 0.52–0.71 s; a platform started and stopped 1.36–1.49 s the
// first time in a process, 0.33–0.43 s the second. Most files run for seconds, so that cost was a
// large share of a run's CPU. Short files are therefore run several to a process, each in a suite
// of its own with its own hooks (scripts/test-group-shim.mjs), one after the other.
import { readFileSync } from 'node:fs';
import { GROUPS_DIR } from './bundle-tests.mjs';

/** A file expected to run this long or longer keeps a process of its own: it gains little, and it would hold up its group. */
const SOLO_SECONDS = 30;
/** A group's files add up to about this many seconds, so groups still spread over the runner's slots. */
const GROUP_SECONDS = 60;

/**
 * Files that must keep a process of their own, each for its reason: they change the process for
 * the files after them, or measure it.
 */
const SOLO = [
  // the browser tests: one Chromium each, and long
  'packages/web/e2e/',
  // listen for the process's uncaught exceptions and unhandled rejections, which a neighbour's would count
  'packages/server/src/transport/mqtt/overload.test.ts',
  'packages/server/src/storage/database.test.ts',
];

/**
 * A file that loads a PKCS#11 module (SoftHSM, the only one these tests use) keeps a process of its
 * own: the module's state is the process's, and two such files in one group failed (hsm-master-key
 * beside online-keys-hsm: 19 tests cancelled). Read from the source, so a new HSM test is not
 * grouped because nobody added it to a list.
 */
function loadsPkcs11Module(file) {
  try {
    return /softhsm/i.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The groups `files` (paths from the repository's root) make: each group's entry (a path under the
 * compiled tests) and its files, in the order they run. A file in no group runs alone.
 * `expected(file)` is a file's expected duration in seconds.
 */
export function groupTestFiles(files, expected) {
  const candidates = files.filter(
    (file) => expected(file) < SOLO_SECONDS && !SOLO.some((prefix) => file.startsWith(prefix)) && !loadsPkcs11Module(file),
  );
  // First fit, longest first: each file into the first group it fits in.
  const bins = [];
  for (const file of candidates.sort((a, b) => expected(b) - expected(a) || a.localeCompare(b))) {
    const bin = bins.find((b) => b.seconds + expected(file) <= GROUP_SECONDS);
    if (bin) {
      bin.files.push(file);
      bin.seconds += expected(file);
    } else bins.push({ files: [file], seconds: expected(file) });
  }
  return bins
    .filter((bin) => bin.files.length > 1)
    .map((bin, i) => ({ entry: `${GROUPS_DIR}/group-${String(i + 1).padStart(2, '0')}.test.js`, files: bin.files }));
}
