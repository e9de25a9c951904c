/**
 * The repository's root directory, by its real path: also when the tests run compiled from the
 * mirror that scripts/compiled-tests.mjs builds in .test-build/ (where `../../..` from a test file is
 * the mirror, whose node_modules npm and ESLint would read as a tree of links).
 */
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY = dirname(realpathSync(fileURLToPath(new URL('../../../../package.json', import.meta.url))));
