/**
 * The test results of this build: `npm test` (scripts/test.mjs) writes `test-results.json` at the
 * repository root, with the passed, failed and skipped tests of every file; a release ships it
 * beside the build and the compliance report cites it as evidence. A file that is missing gives
 * no evidence; one that is malformed is refused with a clear error rather than read half (the report
 * shows that error as evidence).
 */
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { ValidationError } from '../../errors.js';
import { serverPackageRoot } from '../../package-root.js';

export const TEST_RESULTS_FORMAT = 'bulwark-test-results/1';

export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
}

export interface TestResults {
  generatedAt: string;
  commit: string | null;
  /** true when every test file ran (no filter). */
  complete: boolean;
  totals: TestCounts;
  files: Record<string, TestCounts>;
}

/** Where a build keeps its results when the configuration names no file: the repository (or package set) root. */
export const DEFAULT_TEST_RESULTS_FILE = resolve(serverPackageRoot(), '../../test-results.json');

export async function readTestResults(path: string): Promise<TestResults | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ValidationError(`${basename(path)} cannot be read (${code ?? (error as Error).message})`);
  }
  // Named by its file name only: the message is shown in the report, the server's paths are not.
  return parseTestResults(text, basename(path));
}

export function parseTestResults(text: string, source = 'test results'): TestResults {
  const invalid = (why: string) => new ValidationError(`${source} is not a ${TEST_RESULTS_FORMAT} file: ${why}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  if (!isObject(data) || data.format !== TEST_RESULTS_FORMAT) throw invalid(`format must be "${TEST_RESULTS_FORMAT}"`);
  if (typeof data.generatedAt !== 'string' || Number.isNaN(Date.parse(data.generatedAt))) throw invalid('generatedAt must be a date');
  if (data.commit !== null && (typeof data.commit !== 'string' || !/^[0-9a-f]{7,64}$/.test(data.commit)))
    throw invalid('commit must be a hex commit ID or null');
  if (typeof data.complete !== 'boolean') throw invalid('complete must be a boolean');
  const totals = counts(data.totals);
  if (!totals) throw invalid('totals must hold passed, failed and skipped counts');
  if (!isObject(data.files)) throw invalid('files must be an object');
  const files: Record<string, TestCounts> = {};
  for (const [file, value] of Object.entries(data.files)) {
    const c = counts(value);
    if (!c || file.length > 300) throw invalid(`files["${file.slice(0, 80)}"] must hold passed, failed and skipped counts`);
    files[file] = c;
  }
  return { generatedAt: data.generatedAt, commit: data.commit, complete: data.complete, totals, files };
}

function counts(value: unknown): TestCounts | null {
  if (!isObject(value)) return null;
  const { passed, failed, skipped } = value;
  return [passed, failed, skipped].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
    ? { passed: passed as number, failed: failed as number, skipped: skipped as number }
    : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
