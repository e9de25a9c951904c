/**
 * The repository's root directory, by its real path, wherever the module running this lies: the
 * sources (tsx), the compiled mirror scripts/compiled-tests.mjs builds in .test-build/, or a shared
 * chunk of the bundled tests in .test-bundle/ (scripts/bundle-tests.mjs), at a different depth.
 * Found as the nearest directory above holding the workspace's package.json (its name is "bulwark");
 * by its real path, because the mirrors' node_modules are trees of links npm and ESLint would misread.
 */
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRootAbove } from '../package-root.js';

const WORKSPACE_NAME = 'bulwark';

export const REPOSITORY = dirname(
  realpathSync(join(packageRootAbove(dirname(fileURLToPath(import.meta.url)), WORKSPACE_NAME), 'package.json')),
);
