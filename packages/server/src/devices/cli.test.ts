/**
 * `bulwark devices …` as a platform admin runs it: real child processes on a temporary SQLite
 * data directory (initialized in-process), checked by exit code and output. Each spawn costs about
 * two seconds of start-up, so independent commands run side by side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { bulwark } from '../testing/cli.js';

describe('bulwark devices (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  const certificates: string[] = [];
  const ssl = new Openssl();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-devices-cli-'));
    d = ['--data-dir', join(dir, 'data'), '--org', 'default'];
    // Set up in-process (as `bulwark init` and `devices add-product` would): two spawns fewer.
    const config = loadConfig({ dataDir: join(dir, 'data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
      const actor = cliActor(org!.id, 'test');
      const product = await platform.devices.service.createProduct(actor, { name: 'Sensor' });
      const device = await platform.devices.service.register(actor, { serial: 'CRED-1', productId: product.id });
      for (const name of ['a', 'b', 'c'])
        certificates.push(
          (await platform.devices.enrollment.provision(actor, device.id, await ssl.csr(name, `/CN=${device.id}`, P256))).serial,
        );
    } finally {
      await platform.close();
    }
  });
  after(() => {
    ssl.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports nothing from a file with a bad line (exit 2, the line named), then all of a good CSV; retires by serial and refuses to bring it back (exit 5)', async () => {
    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, ['S-1', 'S-2', 'S 3', 'S-4', 'S-5'].map((serial) => JSON.stringify({ serial, product: 'Sensor' })).join('\n'));
    const good = join(dir, 'good.csv');
    writeFileSync(good, ['serial,product,tags', ...['S-1', 'S-2', 'S-3', 'S-4', 'S-5'].map((s) => `${s},Sensor,cli`)].join('\n'));
    const [rejected, imported] = await Promise.all([
      bulwark(['devices', 'import', bad, ...d]),
      bulwark(['devices', 'import', good, ...d, '--json']),
    ]);
    assert.equal(rejected.code, 2, rejected.stderr);
    assert.match(rejected.stderr, /line 3 \(S 3\): serial must be/);
    assert.match(rejected.stderr, /\[device\.import_rejected\]/);
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual(JSON.parse(imported.stdout), { imported: 5 });

    const [retired, unknown] = await Promise.all([
      bulwark(['devices', 'retire', 'S-2', ...d, '--reason', 'end of life']),
      bulwark(['devices', 'disable', 'NOPE', ...d]),
    ]);
    assert.equal(retired.code, 0, retired.stderr);
    assert.match(retired.stdout, /S-2 is now retired/);
    const [revived, listed] = await Promise.all([
      bulwark(['devices', 'activate', 'S-2', ...d]),
      bulwark(['devices', 'list', ...d, '--tag', 'cli', '--json']),
    ]);
    assert.equal(revived.code, 5, revived.stderr);
    assert.match(revived.stderr, /device\.invalid_transition/);
    assert.equal(listed.code, 0, listed.stderr);
    const page = JSON.parse(listed.stdout) as { devices: { serial: string; status: string }[] };
    assert.deepEqual(
      page.devices.map((x) => `${x.serial}:${x.status}`),
      ['S-1:pending', 'S-2:retired', 'S-3:pending', 'S-4:pending', 'S-5:pending'],
    );
    assert.equal(unknown.code, 4, unknown.stderr);
  });

  it('creates an enrollment token, revokes one certificate (exit 5 the second time, 4 for an unknown one), then rotates the rest away', async () => {
    const [created, revoked, badReason] = await Promise.all([
      bulwark(['devices', 'enrollment-token', 'CRED-1', ...d, '--json']),
      bulwark(['devices', 'revoke-cert', certificates[0]!, ...d, '--reason', 'keyCompromise']),
      bulwark(['devices', 'rotate-credentials', 'CRED-1', ...d, '--reason', 'whim']),
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(JSON.parse(created.stdout).token, /^bwt_/);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`Certificate ${certificates[0]} revoked`));
    assert.equal(badReason.code, 2, badReason.stderr);
    const [twice, unknown] = await Promise.all([
      bulwark(['devices', 'revoke-cert', certificates[0]!, ...d]),
      bulwark(['devices', 'revoke-cert', 'abcdef', ...d]),
    ]);
    assert.equal(twice.code, 5, twice.stderr);
    assert.match(twice.stderr, /pki\.already_revoked/);
    assert.equal(unknown.code, 4, unknown.stderr);
    const rotated = await bulwark(['devices', 'rotate-credentials', 'CRED-1', ...d, '--reason', 'keyCompromise', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const body = JSON.parse(rotated.stdout) as { revoked: string[]; token: string };
    assert.deepEqual([...body.revoked].sort(), certificates.slice(1).sort());
    assert.match(body.token, /^bwt_/);
  });
});
