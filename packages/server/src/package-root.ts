/**
 * Where this package lies on disk, for the files found beside it (its package.json, the web
 * console's build, the test results). The same module runs from src/ (tsx), dist/ (tsc) and
 * dist/cli-bundle/ (the CLI's bundle, scripts/bundle-cli.mjs) at different depths, so a path is
 * resolved from the package's root, never counted up from the module's own file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = '@bulwark/server';

let root: string | undefined;

/** The directory holding @bulwark/server's package.json: the nearest one above this module. */
export function serverPackageRoot(): string {
  root ??= packageRootAbove(dirname(fileURLToPath(import.meta.url)), PACKAGE_NAME);
  return root;
}

/** The nearest directory at or above `from` holding the package.json of the package named `name`. */
export function packageRootAbove(from: string, name: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json of ${name} above ${from}`);
  }
}
