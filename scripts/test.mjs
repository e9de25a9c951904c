#!/usr/bin/env node
// Runs every *.test.ts under packages/ (and bench smoke tests) with node's test runner and tsx,
// the files known to be slowest first (scripts/test-times.json) so the run does not end on one
// long file, and prints the ten slowest files and the CPU the tests used (beside the wall time) at the end.
//   node scripts/test.mjs [substring...]   only the files whose path contains one of them
//   --record-times                          rewrite scripts/test-times.json from this run (a whole run)
//   --faults                                the fault-injection tests (*.faults.ts: nodes killed, databases
//                                           cut, disks filled; `npm run test:faults`) instead of *.test.ts
//   --compiled | --sources                  run the tests compiled by tsc (the default for a whole run:
//                                           scripts/compiled-tests.mjs) or through tsx (the default when
//                                           files are named: no compile step before a single file); compiled
//                                           tests run bundled (scripts/bundle-tests.mjs)
//   BULWARK_TEST_BUNDLE=0                   compiled tests run unbundled, module by module
//   BULWARK_TEST_GROUPS=0                   every file in a process of its own (by default, bundled short
//                                           files run several to a process: scripts/test-groups.mjs)
//   BULWARK_TEST_CONCURRENCY=n              files run at once (default 4)
//   BULWARK_TEST_CPU_LOG=file               keep each test file's CPU (JSON lines) in this file after the run
// It builds the workspace's TypeScript packages first (tsc -b) and the CLI's bundle when that build
// changed (scripts/bundle-cli.mjs): the CLI children run the bundle, as `npx bulwark` does.
// Node 20's runner takes no glob patterns, so the files are listed here.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { BUILD_DIR, buildCompiledTests } from './compiled-tests.mjs';
import { BUNDLE_DIR, bundleTests, GROUPS_DIR } from './bundle-tests.mjs';
import { groupTestFiles } from './test-groups.mjs';
import { bundleCli, bundleIsCurrent } from './bundle-cli.mjs';
import { procCpu } from './proc-cpu.mjs';

const root = new URL('..', import.meta.url).pathname;
const timesFile = join(root, 'scripts/test-times.json');
const args = process.argv.slice(2);
const recordTimes = args.includes('--record-times');
const faults = args.includes('--faults');
const FLAGS = ['--record-times', '--faults', '--compiled', '--sources'];
const filters = args.filter((a) => !FLAGS.includes(a));
const compiled = args.includes('--compiled') || (filters.length === 0 && !args.includes('--sources'));
const suffix = faults ? '.faults.ts' : '.test.ts';

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith(suffix)) out.push(relative(root, path));
  }
  return out;
}

/** Seconds each file took in the last recorded run; a file not in it counts as a typical platform test. */
const known = existsSync(timesFile) ? JSON.parse(readFileSync(timesFile, 'utf8')) : {};
const UNKNOWN_SECONDS = 60;
const expected = (file) => known[file] ?? UNKNOWN_SECONDS;

const files = walk(join(root, 'packages'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort((a, b) => expected(b) - expected(a) || a.localeCompare(b));
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(' ')}`);
  process.exit(1);
}

// The CLI children the tests start (a few hundred `bulwark …` runs) load the build, which takes about
// a second less per child than the sources through tsx: bring it up to date first (well under a
// second when it is), and say so to the tests (testing/cli.ts). If it does not build, the children
// load the sources (typecheck reports the error).
const build = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/protocol', 'packages/server', 'packages/device', 'packages/app-sdk'],
  { cwd: root, encoding: 'utf8' },
);
if (build.status !== 0) console.error(`The build failed; the tests' CLI children load the sources.\n${build.stdout}${build.stderr}`);
// bin/bulwark.js runs the CLI's bundle only when it is newer than the compile: rebundle after a change
// (a few seconds), or the children run the compiled modules, the same code at about three times the CPU.
if (build.status === 0 && !bundleIsCurrent(root)) {
  await bundleCli(root).catch((error) => console.error(`The CLI did not bundle; its children load dist/.\n${error.message}`));
}
const builtCli = build.status === 0 ? { BULWARK_TEST_BUILT_CLI: '1' } : {};
const mirror = compiled ? buildCompiledTests(root) : null;
// The compiled tests bundled (scripts/bundle-tests.mjs): a test process loads a few dozen files, not thousands.
const bundling = mirror !== null && process.env.BULWARK_TEST_BUNDLE !== '0';
// Short test files share a process, several to a group (scripts/test-groups.mjs): bundled tests only.
const grouping = bundling && !faults && process.env.BULWARK_TEST_GROUPS !== '0';
/**
 * Files that hold the node to a latency bound run after the others, one at a time (a line
 * `// bulwark-test: alone` before their imports): beside the run's longest files, on two cores, they
 * measured the neighbours. abuse.test.ts's fleet PUBACK p99 was 5 ms alone and 124–1,009 ms at the
 * start of clean-clone runs, against its bound of 1,000 ms.
 */
const ALONE_MARK = /^\/\/ bulwark-test: alone\b/m;
const alone = new Set(files.filter((f) => ALONE_MARK.test(readFileSync(join(root, f), 'utf8'))));
const groups = grouping
  ? groupTestFiles(
      files.filter((f) => !alone.has(f)),
      expected,
    )
  : [];
const bundle = bundling ? await bundleTests(root, groups) : null;
const runDir = bundle ? BUNDLE_DIR : BUILD_DIR;
const loader = mirror ? [] : ['--import', 'tsx'];
/** What the runner starts, a process each: a file alone or a group's entry, the longest expected first. */
const grouped = new Set(bundle ? groups.flatMap((group) => group.files) : []);
const runPath = (f) => (mirror ? join(runDir, f.replace(/\.ts$/, '.js')) : f);
const runFiles = [
  ...files.filter((f) => !grouped.has(f) && !alone.has(f)).map((f) => ({ path: runPath(f), seconds: expected(f) })),
  ...(bundle ? groups : []).map((g) => ({ path: join(BUNDLE_DIR, g.entry), seconds: g.files.reduce((sum, f) => sum + expected(f), 0) })),
]
  .sort((a, b) => b.seconds - a.seconds)
  .map((unit) => unit.path);
const aloneFiles = [...alone].map(runPath);
/** A file as the runner reported it, named by its source: packages/…/x.test.ts. */
const sourceName = (file) =>
  (isAbsolute(file) ? relative(root, file) : file).replace(new RegExp(`^(${BUILD_DIR}|${BUNDLE_DIR})/`), '').replace(/\.js$/, '.ts');

// Files at once. The clean-clone run with three kept 1.57 of 2 cores busy in the tests' own processes
// (the CPU lines below), and with four 1.60, in 848 s of wall instead of 872 (within the noise of this
// machine). The services' CPU (PostgreSQL, Redis, Mosquitto) is on a line of its own.
const concurrency = Number(process.env.BULWARK_TEST_CONCURRENCY ?? 4);
const reportDir = mkdtempSync(join(tmpdir(), 'bulwark-test-times-'));
const reportFile = join(reportDir, 'files.json');
// Each test process appends the CPU it used here at exit (scripts/file-cpu.mjs, preloaded); a log
// named in the environment is kept after the run (and appended to), for a closer look.
const cpuLog = process.env.BULWARK_TEST_CPU_LOG ?? join(reportDir, 'cpu.jsonl');
const startedAt = process.hrtime.bigint();
const cpuBefore = childCpu();
const servicesBefore = servicesCpu();
/** Node's test runner on these files, `at` a time, its per-file report appended to `report`; its exit status. */
function runTests(paths, at, report) {
  if (paths.length === 0) return 0;
  const run = spawnSync(
    process.execPath,
    [
      '--conditions=source',
      ...loader,
      '--import',
      pathToFileURL(join(root, 'scripts/file-cpu.mjs')).href,
      '--test',
      `--test-concurrency=${at}`,
      // A test file that hangs fails after 15 minutes instead of holding CI until its own timeout
      // (the timeout applies to each file as a whole: the slowest take minutes under load).
      '--test-timeout=900000',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${join(root, 'scripts/file-times-reporter.mjs')}`,
      `--test-reporter-destination=${report}`,
      ...paths,
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, ...builtCli, NODE_ENV: 'test', BULWARK_TEST_CPU_LOG: cpuLog } },
  );
  return run.status ?? 1;
}
const aloneReportFile = join(reportDir, 'alone.json');
const statuses = [runTests(runFiles, concurrency, reportFile)];
if (aloneFiles.length > 0) {
  console.log(`\nRun alone, one at a time (they hold the node to a latency bound): ${[...alone].join(', ')}`);
  statuses.push(runTests(aloneFiles, 1, aloneReportFile));
}
const readReport = (file) => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8') || '{}') : {});

if (existsSync(reportFile) || existsSync(aloneReportFile)) {
  const perFile = bySource({ ...readReport(reportFile), ...readReport(aloneReportFile) });
  writeTestResults(perFile);
  const report = Object.entries(perFile)
    .map(([file, t]) => ({ file: sourceName(file), seconds: (t.ms ?? t.testsMs) / 1000, testsSeconds: t.testsMs / 1000 }))
    .sort((a, b) => b.seconds - a.seconds);
  const total = report.reduce((sum, r) => sum + r.seconds, 0);
  console.log(`\nSlowest test files (of ${report.length}; ${total.toFixed(0)} s in all, ${concurrency} at a time):`);
  for (const r of report.slice(0, 10)) console.log(`  ${r.seconds.toFixed(1).padStart(7)} s  ${r.file}`);
  printFileCpu();
  printCpu(cpuBefore, servicesBefore, Number(process.hrtime.bigint() - startedAt) / 1e9);
  if (recordTimes) {
    const times = Object.fromEntries(report.map((r) => [r.file, Math.round(r.seconds)]).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(timesFile, JSON.stringify(times, null, 2) + '\n');
    console.log(`Recorded in ${relative(root, timesFile)}`);
  }
}
rmSync(reportDir, { recursive: true, force: true });

/**
 * The reporter's entries by source file, a group's entry left out (its files have their own): a file
 * reported under two names (scripts/file-times-reporter.mjs) counted once, its tests added up.
 */
function bySource(reported) {
  const files = {};
  for (const [name, entry] of Object.entries(reported)) {
    const file = sourceName(name);
    if (file.startsWith(`${GROUPS_DIR}/`) && !entry.failed) continue;
    const into = (files[file] ??= { ms: null, testsMs: 0, failed: false, tests: { passed: 0, failed: 0, skipped: 0 } });
    into.ms = Math.max(into.ms ?? 0, entry.ms ?? 0) || null;
    into.testsMs = Math.max(into.testsMs, entry.testsMs);
    into.failed ||= entry.failed;
    for (const key of Object.keys(into.tests)) into.tests[key] += entry.tests[key];
  }
  return files;
}

/** The ten test files whose processes used the most CPU (their own, and their children's), from the probe's log. */
function printFileCpu() {
  if (!existsSync(cpuLog)) return;
  const perFile = readFileSync(cpuLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .map((r) => ({ ...r, file: sourceName(r.file), total: r.own + r.children }))
    .sort((a, b) => b.total - a.total);
  const total = perFile.reduce((sum, r) => sum + r.total, 0);
  console.log(`\nTest files using the most CPU (of ${perFile.length}; ${total.toFixed(0)} s in all; own + children waited for):`);
  for (const r of perFile.slice(0, 10)) {
    const group = groups.find((g) => r.file === g.entry.replace(/\.js$/, '.ts'));
    const what = group ? `${r.file}, ${group.files.length} files` : r.file;
    console.log(`  ${r.total.toFixed(1).padStart(7)} s  ${what} (${r.own.toFixed(1)} + ${r.children.toFixed(1)})`);
  }
}

/** CPU seconds (user, system) of every child this process has waited for, and their own waited-for children; null off Linux. */
function childCpu() {
  const own = procCpu('self');
  return own && { user: own.childUser, system: own.childSystem };
}

/**
 * CPU seconds each service's processes have used so far, by process ID: their own time and that of
 * the children they reaped (a PostgreSQL backend that has exited counts in the postmaster's). Empty
 * off Linux, and for a service that is not running.
 */
function servicesCpu() {
  // The services the tests talk to, by process name, and what each is called in the CPU line.
  const SERVICES = { postgres: 'PostgreSQL', 'redis-server': 'Redis', mosquitto: 'Mosquitto' };
  const processes = new Map();
  let pids;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return processes;
  }
  for (const pid of pids) {
    const cpu = procCpu(pid);
    const service = cpu && SERVICES[cpu.name];
    if (service) processes.set(pid, { service, seconds: cpu.user + cpu.system + cpu.childUser + cpu.childSystem });
  }
  return processes;
}

/**
 * What each service used between two readings, counting only the processes in both: a Mosquitto a
 * test started and stopped is not the service, and one that exited meanwhile took its time with it
 * (counted as a drop, it once printed "Mosquitto -4 s").
 */
function servicesCpuBetween(before, after) {
  const used = {};
  for (const [pid, { service, seconds }] of after) {
    const then = before.get(pid);
    if (then) used[service] = (used[service] ?? 0) + seconds - then.seconds;
  }
  return used;
}

/**
 * The CPU the tests used (each test file, and every child they waited for: CLI commands, openssl,
 * mosquitto_pub, Chromium…) beside the wall time, how many of the machine's cores that kept busy,
 * and what the services they talk to (PostgreSQL, Redis, Mosquitto: processes of their own) used
 * meanwhile.
 */
function printCpu(before, servicesBefore, wallSeconds) {
  const after = childCpu();
  if (!before || !after) return;
  const user = after.user - before.user;
  const system = after.system - before.system;
  const cpu = user + system;
  console.log(
    `CPU of the tests' processes: ${cpu.toFixed(0)} s (user ${user.toFixed(0)}, system ${system.toFixed(0)}) in ${wallSeconds.toFixed(0)} s wall, ` +
      `${(cpu / wallSeconds).toFixed(2)} of ${availableParallelism()} cores busy on average`,
  );
  const services = Object.entries(servicesCpuBetween(servicesBefore, servicesCpu())).map(
    ([name, seconds]) => `${name} ${seconds.toFixed(0)} s`,
  );
  if (services.length > 0) console.log(`CPU of the services meanwhile: ${services.join(', ')}`);
}

/**
 * test-results.json at the root: every file's passed, failed and skipped tests, the totals, the
 * commit and whether every file ran. A release ships it beside the build, and the compliance
 * report (assessment/compliance) cites it as the test evidence of this build.
 */
function writeTestResults(perFile) {
  const files = {};
  const totals = { passed: 0, failed: 0, skipped: 0 };
  for (const [file, entry] of Object.entries(perFile).sort(([a], [b]) => a.localeCompare(b))) {
    const counts = { ...entry.tests };
    // A file that failed outside its tests (did not load, crashed, timed out) counts one failure.
    if (entry.failed && counts.failed === 0) counts.failed = 1;
    files[sourceName(file)] = counts;
    for (const key of Object.keys(totals)) totals[key] += counts[key];
  }
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const results = {
    format: 'bulwark-test-results/1',
    generatedAt: new Date().toISOString(),
    commit: head.status === 0 ? head.stdout.trim() : null,
    complete: filters.length === 0,
    totals,
    files,
  };
  const name = faults ? 'test-results-faults.json' : 'test-results.json';
  writeFileSync(join(root, name), JSON.stringify(results, null, 2) + '\n');
  console.log(`Test results: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped (${name})`);
}
process.exit(statuses.find((status) => status !== 0) ?? 0);
