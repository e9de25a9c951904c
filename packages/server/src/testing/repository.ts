/**
 * The repository's root directory, by its real path, wherever the module running this lies: the
 * sources (tsx), the compiled mirror scripts/compiled-tests.mjs builds in .test-build/, or a shared
 * chunk of the bundled tests in .test-bundle/ (scripts/bundle-tests.mjs), at a different depth.
 * Found as the nearest directory above holding the workspace's package.json (its name is "bulwark");
 * by its real path, because the mirrors' node_modules are trees of links npm and ESLint would misread.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKSPACE_NAME = 'bulwark';

function findRepository(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === WORKSPACE_NAME)
      return dirname(realpathSync(manifest));
    if (dirname(dir) === dir) throw new Error(`No package.json of the ${WORKSPACE_NAME} workspace above ${from}`);
  }
}

export const REPOSITORY = findRepository(dirname(fileURLToPath(import.meta.url)));
