#!/usr/bin/env node
// Bundles the `bulwark` command (packages/server/dist/cli/main.js, as tsc compiled it) with the npm
// packages it imports into a few ESM files in packages/server/dist/cli-bundle/, which
// packages/server/bin/bulwark.js runs when they are current. Loading the platform is mostly
// module loading (about 1,200 ESM modules: TypeBox alone is 537, Kysely 263), several times the
// CPU of the commands themselves; a bundle loads a few dozen files. Code splitting keeps each
// command group in its own chunk, so a command still loads only its group (cli/main.ts).
//   node scripts/bundle-cli.mjs            (`npm run build` runs it after tsc -b)
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// Left to node at run time (external), each for a reason the bundle would break:
export const EXTERNAL = [
  // native addons (a .node file loaded from the package's own directory)
  'better-sqlite3',
  '@node-rs/argon2',
  'pkcs11js',
  // starts its transports in worker threads from its own files (lib/worker.js)
  'pino',
  // read their own package.json through __dirname
  '@fastify/swagger',
  'ioredis',
  // required at run time only for PostgreSQL (storage/database.ts): one copy for its importers too
  'pg',
  // CommonJS that @fastify/cookie loads with import(): bundled, its chunk would export only `default`
  // (see bundleForNode), and every cookie would fail to parse or set
  'cookie',
];
// Packages loaded through createRequire at run time (the password dictionaries, the Redis
// emitter and persistence, nodemailer) are not seen by the bundler and resolve from node_modules.

export const BUNDLE_DIR = 'packages/server/dist/cli-bundle';
const ENTRY = 'packages/server/dist/cli/main.js';
/** Every file the bundle was made from, relative to the root: stale when one is newer than it. */
const MANIFEST = 'inputs.json';
/** The compiles bin/bulwark.js compares the bundle with (a bundle older than either is not run). */
const COMPILES = ['packages/server/tsconfig.tsbuildinfo', 'packages/protocol/tsconfig.tsbuildinfo'];

/** Writes the bundle; `root` is the repository's root. */
export async function bundleCli(root) {
  const outdir = join(root, BUNDLE_DIR);
  // Written beside and swapped in whole: a CLI starting meanwhile finds a whole bundle or none (and runs dist/).
  const staging = `${outdir}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const result = await bundleForNode({
    absWorkingDir: root,
    entryPoints: { main: ENTRY },
    outdir: staging,
    external: EXTERNAL,
    logLevel: 'warning',
  });
  const inputs = [
    ...Object.keys(result.metafile.inputs),
    ...COMPILES.filter((file) => existsSync(join(root, file))),
    relative(root, fileURLToPath(import.meta.url)),
  ];
  writeFileSync(join(staging, MANIFEST), JSON.stringify(inputs) + '\n');
  rmSync(outdir, { recursive: true, force: true });
  renameSync(staging, outdir);
}

/**
 * esbuild as both bundles use it: ESM for node with code splitting and a metafile, `options` adding
 * the entries, output and externals. Refuses a bundle that loads a CommonJS file through import():
 * esbuild gives such a chunk only a default export, where node gives the module's named exports too
 * (`(await import('cookie')).parseCookie` is undefined in a bundle), so each must be left external.
 */
export async function bundleForNode(options) {
  const { build } = await import('esbuild');
  const result = await build({
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    metafile: true,
    // The CommonJS packages bundled into ESM call require() for node's modules.
    banner: {
      js: "import { createRequire as __bulwarkCreateRequire } from 'node:module'; const require = __bulwarkCreateRequire(import.meta.url);",
    },
    ...options,
  });
  const { inputs, outputs } = result.metafile;
  const cjs = Object.values(outputs)
    .map((output) => output.entryPoint)
    .filter((entry) => entry !== undefined && inputs[entry]?.format === 'cjs');
  if (cjs.length > 0)
    throw new Error(
      `These CommonJS files are loaded with import(); bundled, they would lose their named exports. Add their packages to EXTERNAL in scripts/bundle-cli.mjs:\n  ${cjs.join('\n  ')}`,
    );
  return result;
}

/** Whether `manifest` (a JSON list of files relative to `base`) exists and none of those files changed since it was written. */
export function manifestIsCurrent(manifest, base) {
  if (!existsSync(manifest)) return false;
  const made = statSync(manifest).mtimeMs;
  return JSON.parse(readFileSync(manifest, 'utf8')).every((file) => {
    const path = join(base, file);
    return existsSync(path) && statSync(path).mtimeMs <= made;
  });
}

/** Whether the bundle exists and no file it was made from (nor this script) changed since. */
export function bundleIsCurrent(root) {
  return manifestIsCurrent(join(root, BUNDLE_DIR, MANIFEST), root);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundleCli(fileURLToPath(new URL('..', import.meta.url)));
}
