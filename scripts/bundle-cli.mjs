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
  // (see dynamicImportsOfCommonJs), and every cookie would fail to parse or set
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
  const { build } = await import('esbuild');
  const outdir = join(root, BUNDLE_DIR);
  // Written beside and swapped in whole: a CLI starting meanwhile finds a whole bundle or none (and runs dist/).
  const staging = `${outdir}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: ENTRY },
    outdir: staging,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    metafile: true,
    logLevel: 'warning',
    // The CommonJS packages bundled into ESM call require() for node's modules.
    banner: {
      js: "import { createRequire as __bulwarkCreateRequire } from 'node:module'; const require = __bulwarkCreateRequire(import.meta.url);",
    },
  });
  const cjs = dynamicImportsOfCommonJs(result.metafile);
  if (cjs.length > 0) throw new Error(cjsMessage(cjs));
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
 * The CommonJS files the bundle loads through import(). esbuild gives such a chunk only a default
 * export, where node gives the module's named exports too: `(await import('cookie')).parseCookie` is
 * undefined in a bundle. Each must be left external.
 */
export function dynamicImportsOfCommonJs(metafile) {
  return Object.values(metafile.outputs)
    .map((output) => output.entryPoint)
    .filter((entry) => entry !== undefined && metafile.inputs[entry]?.format === 'cjs');
}

export function cjsMessage(files) {
  return `These CommonJS files are loaded with import(); bundled, they would lose their named exports. Add their packages to EXTERNAL in scripts/bundle-cli.mjs:\n  ${files.join('\n  ')}`;
}

/** Whether the bundle exists and no file it was made from (nor this script) changed since. */
export function bundleIsCurrent(root) {
  const manifest = join(root, BUNDLE_DIR, MANIFEST);
  if (!existsSync(manifest)) return false;
  const made = statSync(manifest).mtimeMs;
  return JSON.parse(readFileSync(manifest, 'utf8')).every((file) => {
    const path = join(root, file);
    return existsSync(path) && statSync(path).mtimeMs <= made;
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundleCli(fileURLToPath(new URL('..', import.meta.url)));
}
