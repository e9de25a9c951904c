// Lint rules for the whole workspace: ESLint's and typescript-eslint's recommended sets, and the
// layer rules of docs/architecture.md (which import may point where), checked by
// packages/server/src/architecture.test.ts against a planted wrong-way import of each kind.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SERVER = 'packages/server/src';
const DOMAINS = ['accounts', 'apps', 'assessment', 'audit', 'binding', 'devices', 'keys', 'pki', 'telemetry', 'updates', 'ops', 'storage'];

// Tests and the test harness may import anything.
const TESTS = ['**/*.test.ts', '**/*.faults.ts', '**/testing/**'];
// Route plugins: the HTTP adapter of each domain, `<domain>/routes.ts` or `<domain>/routes/*.ts`.
const ROUTE_FILES = [`${SERVER}/*/routes.ts`, `${SERVER}/*/routes/**/*.ts`];

// Where Kysely belongs: storage/, each table's store, and the composition root that hands the handle to the stores.
const KYSELY_HOME = [`${SERVER}/storage/**`, `${SERVER}/**/*store*.ts`, `${SERVER}/platform.ts`];
// Where Fastify and TypeBox belong besides the route plugins: transport/http (plumbing), the config
// schema, the runner and composition root that build the app, and the Prometheus hook on the app.
const FASTIFY_HOME = [
  ...ROUTE_FILES,
  `${SERVER}/transport/http/**`,
  `${SERVER}/ops/config.ts`,
  `${SERVER}/ops/metrics.ts`,
  `${SERVER}/runner/**`,
  `${SERVER}/routes.ts`,
];

const FASTIFY = {
  group: ['fastify', '@fastify/*', 'typebox', 'typebox/*', '@sinclair/typebox', '@sinclair/typebox/*'],
  message: 'Fastify and TypeBox belong in route files, transport/http and the config schema (docs/architecture.md).',
};
const KYSELY = {
  group: ['kysely', 'kysely/*'],
  message: "Kysely belongs in storage/ and each table's store (`*store*.ts`); call the store (docs/architecture.md).",
};
const QUERY = {
  selector: 'CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)$/]',
  message: "Queries belong in each table's store (`*store*.ts`); call the store (docs/architecture.md).",
};
const restrictLibraries = (...patterns) => ({ '@typescript-eslint/no-restricted-imports': ['error', { patterns }] });

const TOP = {
  group: ['**/runner/**', '**/cli/**', '**/platform.js', '**/transport/mqtt/**'],
  message: 'A domain never imports the runner, the CLI, the composition root (platform.ts) or the MQTT transport: they stand on top of it.',
};
const TRANSPORT = {
  group: ['**/transport/**'],
  message: 'Only route files import transport/http; services, stores and models know no transport (docs/architecture.md).',
};
const ROUTES = {
  group: ['**/routes.js', '**/routes/**'],
  message: 'Services, stores and models never import route plugins: routes call services, not the other way round.',
};
const ANY_DOMAIN = {
  group: [...DOMAINS, 'runner', 'cli'].map((folder) => `**/${folder}/**`).concat('**/platform.js', '**/routes.js'),
  message: 'This layer sits below the domains and imports none of them (docs/architecture.md).',
};
const restrictLayers = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

// TODO(issue 13, test-only code into testing/): it imports the composition root for its fixtures.
const DOMAIN_TEST_HELPERS_FOR_NOW = [`${SERVER}/updates/rollout-test-helpers.ts`];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bulwark-data/**', '.test-build/**', '.test-bundle/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: TESTS,
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },

  // Libraries (@typescript-eslint/no-restricted-imports). ESLint keeps the last block's options for
  // a file that several blocks match, so each later block restates everything its files may not use.
  { files: ['packages/*/src/**/*.ts'], rules: restrictLibraries(FASTIFY, KYSELY) },
  { files: [...KYSELY_HOME], rules: restrictLibraries(FASTIFY) },
  { files: FASTIFY_HOME, rules: restrictLibraries(KYSELY) },
  { files: TESTS, rules: { '@typescript-eslint/no-restricted-imports': 'off' } },

  // Queries (no-restricted-syntax): a service holding a store's executor could query without importing
  // kysely; building a query is the store's job too.
  {
    files: [`${SERVER}/**/*.ts`],
    ignores: [...KYSELY_HOME, ...TESTS],
    rules: { 'no-restricted-syntax': ['error', QUERY] },
  },

  // Layers (no-restricted-imports), same rule of the last matching block.
  { files: DOMAINS.map((folder) => `${SERVER}/${folder}/**/*.ts`), rules: restrictLayers(TOP, TRANSPORT, ROUTES) },
  { files: ROUTE_FILES, rules: restrictLayers(TOP) },
  { files: [`${SERVER}/transport/http/**/*.ts`, `${SERVER}/ops/config.ts`], rules: restrictLayers(ANY_DOMAIN) },
  {
    files: ['packages/device/src/**/*.ts'],
    rules: restrictLayers({
      group: ['**/server/src/**', '@bulwark/server', '@bulwark/server/*'],
      message: "The device package never imports the server's source: it speaks the protocol (@bulwark/protocol).",
    }),
  },
  // TODO(issue 13, @bulwark/server/testing export): the device package's tests and harness still reach into server/src.
  { files: [...TESTS, ...DOMAIN_TEST_HELPERS_FOR_NOW], rules: { 'no-restricted-imports': 'off' } },
);
