/**
 * The layer rules of docs/architecture.md are the linter's (eslint.config.js): a planted
 * wrong-way import of each kind is refused, the same imports pointing the right way are not, and
 * the real tree breaks none of them.
 *
 * The tree is linted with the whole configuration through `npm run lint`'s cache (.eslintcache, by
 * content): CI lints the tree before the tests, so only a file changed since is parsed again here
 * (about 25 s of CPU otherwise). The planted imports are linted afresh, with the layer rules only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { REPOSITORY as ROOT } from './testing/repository.js';
const LAYER_RULES = new Set(['no-restricted-imports', '@typescript-eslint/no-restricted-imports', 'no-restricted-syntax']);
const eslint = new ESLint({ cwd: ROOT, ruleFilter: ({ ruleId }) => LAYER_RULES.has(ruleId) });
/** `npm run lint`'s options (package.json): a cached result is the whole configuration's, so no ruleFilter here. */
const cachedEslint = new ESLint({ cwd: ROOT, cache: true, cacheStrategy: 'content', cacheLocation: join(ROOT, '.eslintcache') });

/** The layer-rule messages ESLint gives `code` as if it were the file at `path` (relative to the repository). */
async function refusals(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return result!.messages.filter((message) => message.ruleId && LAYER_RULES.has(message.ruleId)).map((message) => message.message);
}

const PLANTED: Array<{ kind: string; path: string; code: string }> = [
  { kind: 'Fastify in a service', path: 'packages/server/src/devices/planted.ts', code: "import type { FastifyInstance } from 'fastify';" },
  {
    kind: 'a Fastify plugin in a store',
    path: 'packages/server/src/telemetry/planted-store.ts',
    code: "import cookie from '@fastify/cookie';",
  },
  { kind: 'TypeBox in a service', path: 'packages/server/src/accounts/planted.ts', code: "import { Type } from 'typebox';" },
  { kind: 'Kysely in a service', path: 'packages/server/src/telemetry/planted.ts', code: "import type { Kysely } from 'kysely';" },
  {
    kind: 'a query in a service (through a store’s executor, without importing kysely)',
    path: 'packages/server/src/devices/planted.ts',
    code: "import type { DevicesStore } from './store.js';\nexport const f = (s: DevicesStore) => s.db.selectFrom('devices').selectAll().execute();",
  },
  {
    kind: 'a write in a route file',
    path: 'packages/server/src/devices/routes/planted.ts',
    code: "import type { DevicesStore } from '../store.js';\nexport const f = (s: DevicesStore) => s.db.deleteFrom('devices').execute();",
  },
  { kind: 'Kysely in a route file', path: 'packages/server/src/telemetry/routes.ts', code: "import { sql } from 'kysely';" },
  {
    kind: 'a domain importing the runner',
    path: 'packages/server/src/devices/planted.ts',
    code: "import { startServer } from '../runner/server.js';",
  },
  {
    kind: 'a domain importing the composition root',
    path: 'packages/server/src/updates/planted.ts',
    code: "import type { Platform } from '../platform.js';",
  },
  {
    kind: 'a service importing transport/http',
    path: 'packages/server/src/devices/planted.ts',
    code: "import { Strict } from '../transport/http/schemas.js';",
  },
  {
    kind: 'a store importing transport/mqtt',
    path: 'packages/server/src/devices/planted-store.ts',
    code: "import { MqttGateway } from '../transport/mqtt/broker.js';",
  },
  {
    kind: 'a service importing its routes',
    path: 'packages/server/src/audit/planted.ts',
    code: "import { auditRoutes } from './routes.js';",
  },
  {
    kind: 'a route file importing the runner',
    path: 'packages/server/src/devices/routes/planted.ts',
    code: "import { initialize } from '../../runner/init.js';",
  },
  {
    kind: 'a route file importing the composition root',
    path: 'packages/server/src/pki/routes.ts',
    code: "import type { Platform } from '../platform.js';",
  },
  {
    kind: 'transport/http importing a domain',
    path: 'packages/server/src/transport/http/planted.ts',
    code: "import type { Actor } from '../../accounts/roles.js';",
  },
  {
    kind: 'transport/http importing ops',
    path: 'packages/server/src/transport/http/planted.ts',
    code: "import type { Metrics } from '../../ops/metrics.js';",
  },
  {
    kind: 'transport/http importing the composition root',
    path: 'packages/server/src/transport/http/app.ts',
    code: "import type { Platform } from '../../platform.js';",
  },
  {
    kind: 'the config importing a domain',
    path: 'packages/server/src/ops/config.ts',
    code: "import type { DeviceStatus } from '../devices/model.js';",
  },
  {
    kind: 'the config importing storage',
    path: 'packages/server/src/ops/config.ts',
    code: "import type { Database } from '../storage/schema.js';",
  },
  {
    kind: "the device package importing the server's source",
    path: 'packages/device/src/planted.ts',
    code: "import { cliActor } from '../../server/src/accounts/roles.js';",
  },
  {
    kind: 'the device package importing the server package',
    path: 'packages/device/src/planted.ts',
    code: "import * as server from '@bulwark/server';",
  },
];

const ALLOWED: Array<{ kind: string; path: string; code: string }> = [
  {
    kind: 'a route file using Fastify, TypeBox, transport/http and its service',
    path: 'packages/server/src/telemetry/routes.ts',
    code: [
      "import type { FastifyInstance } from 'fastify';",
      "import { Type } from 'typebox';",
      "import { Strict } from '../transport/http/schemas.js';",
      "import type { TelemetryService } from './service.js';",
    ].join('\n'),
  },
  {
    kind: 'a store running its queries',
    path: 'packages/server/src/devices/planted-store.ts',
    code: "import type { Kysely } from 'kysely';\nimport type { Database } from '../storage/schema.js';\nexport const f = (db: Kysely<Database>) => db.updateTable('devices').set({ updated_at: 1 }).execute();",
  },
  { kind: 'a store using Kysely', path: 'packages/server/src/telemetry/store.ts', code: "import type { Kysely } from 'kysely';" },
  {
    kind: 'a service using another domain’s service',
    path: 'packages/server/src/telemetry/planted.ts',
    code: "import type { DevicesService } from '../devices/service.js';",
  },
  { kind: 'the config using TypeBox', path: 'packages/server/src/ops/config.ts', code: "import { Type } from 'typebox';" },
  {
    kind: 'transport/http using the shared errors',
    path: 'packages/server/src/transport/http/planted.ts',
    code: "import { BulwarkError } from '../../errors.js';",
  },
  {
    kind: 'the runner using transport and the composition root',
    path: 'packages/server/src/runner/planted.ts',
    code: "import type { Platform } from '../platform.js';\nimport { buildHttpApp } from '../transport/http/app.js';",
  },
  {
    kind: 'a test using the runner',
    path: 'packages/server/src/devices/planted.test.ts',
    code: "import { startServer } from '../runner/server.js';",
  },
  {
    kind: 'the device package using the protocol',
    path: 'packages/device/src/planted.ts',
    code: "import { ErrorCodes } from '@bulwark/protocol';",
  },
];

describe('layer rules', () => {
  for (const { kind, path, code } of PLANTED) {
    it(`refuses ${kind}`, async () => {
      const messages = await refusals(path, code);
      assert.ok(messages.length > 0, `${path}: ${code} was not refused`);
    });
  }

  for (const { kind, path, code } of ALLOWED) {
    it(`allows ${kind}`, async () => {
      assert.deepEqual(await refusals(path, code), []);
    });
  }

  it('finds no wrong-way import in the tree', async () => {
    const results = await cachedEslint.lintFiles(['packages/server/src', 'packages/device/src', 'packages/protocol/src']);
    const broken = results.flatMap((result) =>
      result.messages
        .filter((message) => message.ruleId && LAYER_RULES.has(message.ruleId))
        .map((m) => `${result.filePath}:${m.line} ${m.message}`),
    );
    assert.deepEqual(broken, []);
  });
});
