// A node:test reporter that writes, for each test file, how long it ran (from the start of its
// process to its end, in milliseconds), the sum of its top-level tests' durations, and how many of
// its tests passed, failed and were skipped, as one JSON object. scripts/test.mjs passes it next to
// the spec reporter, prints the slowest files from it and writes test-results.json.
export default async function* fileTimes(source) {
  const files = {};
  const entry = (file) => (files[file] ??= { ms: null, testsMs: 0, failed: false, tests: { passed: 0, failed: 0, skipped: 0 } });
  for await (const event of source) {
    if (event.type !== 'test:complete' && event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, file, details, skip, todo } = event.data;
    if (!file) continue;
    // Node 20 reports each file as a top-level test named after its path, in `test:complete` only.
    if (name === file && nesting === 0) {
      if (event.type === 'test:complete') {
        entry(file).ms = details.duration_ms;
        if (details.error) entry(file).failed = true;
      }
      continue;
    }
    if (event.type === 'test:complete') continue;
    // Each test counted once; a suite counts only when skipped as a whole (its tests never ran).
    const counts = entry(file).tests;
    if (skip || todo) {
      if (details?.type !== 'suite' || skip) counts.skipped++;
    } else if (details?.type !== 'suite') {
      if (event.type === 'test:pass') counts.passed++;
      else counts.failed++;
    } else if (event.type === 'test:fail' && !details.error?.failureType?.startsWith('subtest')) {
      counts.failed++; // a suite that failed outside its tests (a hook)
    }
    if (nesting === 0) {
      entry(file).testsMs += details.duration_ms ?? 0;
      if (event.type === 'test:fail') entry(file).failed = true;
    }
  }
  yield JSON.stringify(files) + '\n';
}
