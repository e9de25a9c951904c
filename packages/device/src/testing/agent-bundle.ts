/**
 * Builds `bulwark-agent` from source into one ESM file (our TypeScript bundled, npm packages
 * left to node), so power-cut tests can start and kill it many times without paying tsx's
 * start-up on each run.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPOSITORY } from '@bulwark/server/testing';

/**
 * Writes the bundle under the repository's node_modules/.cache (so its bare imports resolve to
 * the installed packages); returns its path and a function that removes it.
 */
export async function bundleAgent(): Promise<{ path: string; remove(): void }> {
  const outDir = join(REPOSITORY, `node_modules/.cache/bulwark-agent-test-${process.pid}-${Date.now()}/`);
  const outfile = join(outDir, 'bulwark-agent.mjs');
  await build({
    entryPoints: [join(REPOSITORY, 'packages/device/src/testing/agent-main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['source'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'npm-packages-external',
        setup(b) {
          // Our workspace packages are bundled from source; every other bare import stays a runtime import.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@bulwark/') ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  return { path: outfile, remove: () => rmSync(outDir, { recursive: true, force: true }) };
}
