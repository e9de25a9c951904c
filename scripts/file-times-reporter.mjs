// A node:test reporter that writes, for each test file, how long it ran (from the start of its
// process to its end, in milliseconds) and the sum of its top-level tests' durations, as one JSON
// object. scripts/test.mjs passes it next to the spec reporter and prints the slowest files from it.
export default async function* fileTimes(source) {
  const files = {};
  const entry = (file) => (files[file] ??= { ms: null, testsMs: 0, failed: false });
  for await (const event of source) {
    if (event.type !== 'test:complete' && event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, file, details } = event.data;
    if (!file || nesting !== 0) continue;
    // Node 20 reports each file as a top-level test named after its path, in `test:complete` only.
    if (name === file) {
      if (event.type === 'test:complete') {
        entry(file).ms = details.duration_ms;
        if (details.error) entry(file).failed = true;
      }
    } else if (event.type !== 'test:complete') {
      entry(file).testsMs += details.duration_ms ?? 0;
      if (event.type === 'test:fail') entry(file).failed = true;
    }
  }
  yield JSON.stringify(files) + '\n';
}
