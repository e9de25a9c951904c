/**
 * Benchmarks that measure a server process measure what ships: the build (tsc -b, then the CLI's
 * bundle that bin/bulwark.js runs), not the sources through tsx, whose loader and source maps the
 * shipped server does not carry. A baseline server written for a benchmark (a .ts file) runs
 * compiled the same way: plain JavaScript in plain node.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { transformSync } from 'esbuild';
import { REPOSITORY } from '../../packages/server/src/testing/repository.js';

/** Brings the build up to date and has the `bulwark` children of the testing helpers run it (testing/cli.ts). */
export function useBuiltCli(): void {
  const steps = [
    [join(REPOSITORY, 'node_modules/typescript/bin/tsc'), '-b', 'packages/protocol', 'packages/server'],
    [join(REPOSITORY, 'scripts/bundle-cli.mjs')],
  ];
  for (const args of steps) {
    const run = spawnSync(process.execPath, args, { cwd: REPOSITORY, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`node ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
  }
  process.env.BULWARK_TEST_BUILT_CLI = '1';
}

/** `file` (a self-contained .ts script, node: imports only) as a JavaScript module in `dir`; returns its path. */
export function compiledScript(file: string, dir: string): string {
  const { code } = transformSync(readFileSync(join(REPOSITORY, file), 'utf8'), { loader: 'ts', format: 'esm', target: 'node20' });
  const out = join(dir, basename(file).replace(/\.ts$/, '.mjs'));
  writeFileSync(out, code);
  return out;
}
