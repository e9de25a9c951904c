/**
 * `bulwark telemetry prune` as an operator runs it: a real child process on a temporary SQLite data
 * directory (set up in-process), checked by exit code, output and what is left in the database.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { TelemetryWriter } from '../telemetry/ingest.js';
import { bulwark } from '../testing/cli.js';

const DAY = 86_400_000;

describe('bulwark telemetry prune (CLI, SQLite)', () => {
  let dir: string;
  let config: Config;
  const count = async () => {
    const platform = await openPlatform(config, { env: {} });
    try {
      return await platform.telemetry.store.count();
    } finally {
      await platform.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-telemetry-cli-'));
    config = loadConfig({ dataDir: join(dir, 'data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
      const actor = cliActor(org!.id, 'test');
      const product = await platform.devices.service.createProduct(actor, { name: 'Sensor' });
      const device = await platform.devices.service.register(actor, { serial: 'PRUNE-1', productId: product.id });
      const now = Date.now();
      // The default retention is 90 days: 12 readings are older, 5 are not.
      const ages = [...Array.from({ length: 12 }, (_, i) => 91 + i), 1, 2, 3, 80, 89];
      await new TelemetryWriter(platform.telemetry.store).write(
        ages.map((age) => ({ organization_id: org!.id, device_id: device.id, ts: now - age * DAY, received_at: now, data: '{"t":1}' })),
      );
    } finally {
      await platform.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('counts with --dry-run without deleting, then deletes exactly the expired readings', async () => {
    const d = ['--data-dir', join(dir, 'data')];
    const dry = await bulwark(['telemetry', 'prune', '--dry-run', '--json', ...d]);
    assert.equal(dry.code, 0, dry.stderr);
    const dryReport = JSON.parse(dry.stdout);
    assert.deepEqual([dryReport.dryRun, dryReport.rows, dryReport.batches], [true, 12, 0]);
    assert.equal(await count(), 17, 'nothing deleted by a dry run');

    const pruned = await bulwark(['telemetry', 'prune', ...d]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /^Deleted 12 telemetry rows in 1 batches\n {2}product \S+: 12 rows before \S+ \(90 days, the default\)\n$/);
    assert.equal(await count(), 5);
  });
});
