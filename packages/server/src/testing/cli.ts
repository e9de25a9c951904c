/**
 * The `bulwark` command as tests run it: a real child process (`node packages/server/bin/bulwark.js`,
 * the build and its bundle, when scripts/test.mjs has just brought it up to date; `node --import tsx …/cli/main.ts`
 * when a test file runs alone) in the environment of a fresh shell (none of the developer's BULWARK_* settings leak in),
 * checked by exit code and output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor, type Actor } from '../accounts/roles.js';
import { loadConfig } from '../ops/config.js';
import { openPlatform, type Platform } from '../platform.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { REPOSITORY } from './repository.js';

export const ROOT = REPOSITORY;
export const CLI_MAIN = 'packages/server/src/cli/main.ts';

/**
 * The V8 flags `bulwark` runs with: bin/bulwark.js's first line and `npm start` pass them (a
 * 32 MB young generation, docs/operations.md). A test or benchmark that starts the CLI passes them
 * too, so a node it measures runs as users run it (`cli.test.ts` checks the three agree).
 */
export const SHIPPED_NODE_FLAGS = ['--max-semi-space-size=32'] as const;

/**
 * Node's arguments that run the CLI, after SHIPPED_NODE_FLAGS: the build when scripts/test.mjs (or a benchmark) says it is
 * current (BULWARK_TEST_BUILT_CLI=1, read at each start), through bin/bulwark.js as users run it
 * (the CLI's bundle, which scripts/test.mjs has brought up to date: about a third of the CPU of the
 * compiled modules, which are themselves a second less per child than the sources through tsx; the
 * suite starts a few hundred); the sources otherwise.
 */
export function cliArgs(): string[] {
  return [
    ...SHIPPED_NODE_FLAGS,
    ...(process.env.BULWARK_TEST_BUILT_CLI === '1'
      ? ['packages/server/bin/bulwark.js']
      : ['--conditions=source', '--import', 'tsx', CLI_MAIN]),
  ];
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The same as one shell command with absolute paths, for scripts run from another directory. */
export function cliShellCommand(): string {
  const args = [
    ...SHIPPED_NODE_FLAGS,
    ...(process.env.BULWARK_TEST_BUILT_CLI === '1'
      ? [join(ROOT, 'packages/server/bin/bulwark.js')]
      : ['--conditions=source', '--import', import.meta.resolve('tsx'), join(ROOT, CLI_MAIN)]),
  ];
  return [process.execPath, ...args].map((a) => `"${a}"`).join(' ');
}

/** This process's environment without BULWARK_* and the test runner's variables, plus `extra`. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('BULWARK_') && !key.startsWith('NODE_TEST')) env[key] = value;
  return { ...env, ...extra };
}

/** Starts the CLI (for long-running commands such as `serve`); stdout and stderr are pipes. */
export function startCli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [...cliArgs(), ...args], {
    cwd: ROOT,
    env: cliEnv(extraEnv),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to its end; `input` goes to its standard input. */
export function bulwark(args: string[], extraEnv: NodeJS.ProcessEnv = {}, input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = startCli(args, extraEnv);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c));
    child.stderr!.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
  });
}

/**
 * A data directory set up by `bulwark init` (SQLite, organization `default`) under a new temporary
 * directory, seeded through the platform opened on it as the CLI would open it, then closed: what the
 * CLI tests run their commands against. Remove `dir` after.
 */
export async function initializedDataDir(
  prefix: string,
  seed: (platform: Platform, actor: Actor) => Promise<void>,
): Promise<{ dir: string; dataDir: string; args: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), `bulwark-${prefix}-`));
  const dataDir = join(dir, 'data');
  const config = loadConfig({ dataDir, env: {} });
  const init = await initialize(config, DEFAULT_INIT, { env: {} });
  const platform = await openPlatform(config, { env: {} });
  try {
    await seed(platform, cliActor((await platform.accounts.store.organizationBySlug(init.organization.slug))!.id, 'test'));
  } finally {
    await platform.close();
  }
  return { dir, dataDir, args: ['--data-dir', dataDir, '--org', 'default'] };
}
