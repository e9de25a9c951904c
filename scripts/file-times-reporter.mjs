// A node:test reporter that writes, for each test file, how long it ran (from the start of its
// process to its end, in milliseconds), the sum of its top-level tests' durations, and how many of
// its tests passed, failed and were skipped, as one JSON object. scripts/test.mjs passes it next to
// the spec reporter, prints the slowest files from it and writes test-results.json.
//
// Which file a test belongs to: node reports each test at the file its test() call was made from.
// That is the test file for most, but a suite a shared helper builds (testing/broker-suite.ts…) is
// reported at the bundle chunk holding the helper, and in a group of files sharing a process
// (scripts/test-groups.mjs) each file's top-level calls are made by the group's shim. Node reports
// one process's events together, its file-level completion last, so such a test counts for the
// group's file running at the time (its top-level suite, named after the file, started last), or
// else for the process whose completion comes next. A file may so appear under two names (its
// bundled path, and its path in the repository as a group's suite): scripts/test.mjs adds them up.
const isTestFile = (file) => /\.(test|faults)\.[jt]s$/.test(file);

export default async function* fileTimes(source) {
  const files = {};
  const blank = () => ({ ms: null, testsMs: 0, failed: false, tests: { passed: 0, failed: 0, skipped: 0 } });
  const entry = (file) => (files[file] ??= blank());
  /** The group's file whose tests run now (the name of its top-level suite), and the tests not yet placed. */
  let member = null;
  let pending = blank();
  for await (const event of source) {
    if (event.type !== 'test:start' && event.type !== 'test:complete' && event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, file, details, skip, todo } = event.data;
    if (!file) continue;
    // Node 20 reports each file as a top-level test named after its path, in `test:complete` only.
    if (name === file && nesting === 0) {
      if (event.type === 'test:complete') {
        const own = entry(file);
        own.ms = details.duration_ms;
        if (details.error) own.failed = true;
        for (const key of Object.keys(own.tests)) own.tests[key] += pending.tests[key];
        own.testsMs += pending.testsMs;
        own.failed ||= pending.failed;
        pending = blank();
        member = null;
      }
      continue;
    }
    // A group's file: its top-level suite, named after it (scripts/test-group-shim.mjs).
    const groupMember = nesting === 0 && !isTestFile(file) && isTestFile(name) && details?.type !== 'test';
    if (event.type === 'test:start') {
      if (groupMember) member = name;
      continue;
    }
    if (event.type === 'test:complete') continue;
    const owner = isTestFile(file) ? entry(file) : member !== null ? entry(member) : pending;
    if (groupMember && name === member) {
      // The file's whole run, and a failure outside its tests (a hook) as one failure of the file.
      owner.ms = details.duration_ms;
      owner.testsMs = details.duration_ms;
      if (event.type === 'test:fail' && !details.error?.failureType?.startsWith('subtest')) {
        owner.tests.failed++;
        owner.failed = true;
      }
      member = null;
      continue;
    }
    // Each test counted once; a suite counts only when skipped as a whole (its tests never ran).
    const counts = owner.tests;
    if (skip || todo) {
      if (details?.type !== 'suite' || skip) counts.skipped++;
    } else if (details?.type !== 'suite') {
      if (event.type === 'test:pass') counts.passed++;
      else counts.failed++;
    } else if (event.type === 'test:fail' && !details.error?.failureType?.startsWith('subtest')) {
      counts.failed++; // a suite that failed outside its tests (a hook)
    }
    if (nesting === 0) {
      owner.testsMs += details.duration_ms ?? 0;
      if (event.type === 'test:fail') owner.failed = true;
    }
  }
  yield JSON.stringify(files) + '\n';
}
