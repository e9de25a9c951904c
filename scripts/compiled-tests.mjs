// The test suite, compiled once instead of loaded through tsx in every test process.
//
// tsx hooks every module a test process loads (the platform is several hundred) and costs about
// 1.5 s of CPU per test file before its first test; a whole run starts ~175 files. Here tsc compiles
// the sources and the tests (tsconfig.test-build.json, incremental: seconds when little changed)
// into .test-build/, and the rest of the repository is mirrored into it by symbolic links, so every
// path a test or a module computes from its own location (fixtures, docs, the web build, the CLI's
// bin, test-artifacts/) still finds the same file. The workspace packages inside the mirror resolve
// to the mirror's compiled sources: their package.json "source" exports point at .js instead of .ts,
// and the tests run with --conditions=source as before. A child process a test starts with
// `--import tsx` on a .ts file still works (the .ts is linked in).
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BUILD_DIR = '.test-build';

/**
 * Compiles and mirrors; returns the mirror's root, or null (with the reason printed) when the
 * compiler emitted nothing usable, so the caller can fall back to the sources.
 */
export function buildCompiledTests(root) {
  const out = join(root, BUILD_DIR);
  const started = Date.now();
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.test-build.json'], {
    cwd: root,
    encoding: 'utf8',
  });
  // Type errors still emit (the typecheck step reports them); only a compiler that did not run is fatal here.
  if (tsc.status !== 0) console.error(`tsc reported errors compiling the tests (they still run):\n${tsc.stdout}${tsc.stderr}`);
  if (!existsSync(join(out, 'packages'))) {
    console.error('The tests did not compile; they run from the sources through tsx.');
    return null;
  }
  // Directories the tests write into must exist before they are linked, or the writes land in the mirror.
  for (const dir of ['test-artifacts', '.test-tmp']) mkdirSync(join(root, dir), { recursive: true });
  mirrorNodeModules(root, out);
  for (const name of readdirSync(join(root, 'packages'))) {
    const manifest = join(root, 'packages', name, 'package.json');
    if (existsSync(manifest) && existsSync(join(out, 'packages', name)))
      writeCompiledManifest(manifest, join(out, 'packages', name, 'package.json'));
  }
  mirror(root, out);
  console.log(`Tests compiled into ${BUILD_DIR}/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/** Links every entry of `from` that `to` lacks; recurses where both hold a real directory. */
export function mirror(from, to) {
  for (const name of readdirSync(from)) {
    if (name === BUILD_DIR || name === '.test-bundle' || name === '.git') continue;
    const source = join(from, name);
    const target = join(to, name);
    const existing = lstatOrNull(target);
    if (existing === null) {
      symlinkSync(source, target);
    } else if (existing.isDirectory() && !existing.isSymbolicLink() && lstatSync(source).isDirectory()) {
      mirror(source, target);
    }
  }
}

/** node_modules: every package linked to the real one, except the workspace's own, which point into the mirror. */
function mirrorNodeModules(root, out) {
  const scope = join(out, 'node_modules', '@bulwark');
  mkdirSync(scope, { recursive: true });
  const real = join(root, 'node_modules', '@bulwark');
  for (const name of readdirSync(real)) {
    if (lstatOrNull(join(scope, name)) === null) symlinkSync(readlinkSync(join(real, name)), join(scope, name));
  }
}

/** The package's manifest with its "source" exports pointing at the compiled files. */
function writeCompiledManifest(from, to) {
  const manifest = JSON.parse(readFileSync(from, 'utf8'));
  const compiled = JSON.stringify(
    manifest,
    (key, value) => (key === 'source' && typeof value === 'string' ? value.replace(/\.ts$/, '.js') : value),
    2,
  );
  // Never write through a link: that would rewrite the real manifest.
  if (lstatOrNull(to)?.isSymbolicLink()) unlinkSync(to);
  const current = existsSync(to) ? readFileSync(to, 'utf8') : null;
  if (current !== compiled) writeFileSync(to, compiled);
}

function lstatOrNull(path) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
