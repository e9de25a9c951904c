/**
 * `bulwark devices claim-codes | binding | reset-binding` as a platform admin runs them: real child
 * processes on a temporary SQLite data directory (initialized in-process).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig } from '../ops/config.js';
import { openPlatform } from '../platform.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { bulwark } from '../testing/cli.js';
import { readSvgQr } from '../testing/qr.js';
import { claimCodeHash, normalizeClaimCode } from './claim-codes.js';

describe('bulwark devices claim-codes and binding (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  let productId: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-binding-cli-'));
    d = ['--data-dir', join(dir, 'data'), '--org', 'default'];
    const config = loadConfig({ dataDir: join(dir, 'data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
      const actor = cliActor(org!.id, 'test');
      const product = await platform.devices.service.createProduct(actor, { name: 'Plug' });
      productId = product.id;
      for (const serial of ['BOX-1', 'BOX-2', 'BOX-3']) await platform.devices.service.register(actor, { serial, productId: product.id });
    } finally {
      await platform.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints one code per device at provisioning (by serial and from a file) with its label link and QR code, keeps only hashes, and never shows them again', async () => {
    const file = join(dir, 'serials.txt');
    writeFileSync(file, 'BOX-2\nBOX-3\n');
    const labels = join(dir, 'labels');
    const made = await bulwark(['devices', 'claim-codes', ...d, 'BOX-1', '--file', file, '--labels', labels]);
    assert.equal(made.code, 0, made.stderr);
    const rows = made.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.deepEqual(
      rows.map((r) => r[0]),
      ['BOX-1', 'BOX-2', 'BOX-3'],
    );
    for (const [, , code] of rows) assert.match(code!, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    // The label link: the app's Add a device page on the platform's address, the code in the fragment (sent to no server).
    for (const [, , code, link] of rows) assert.equal(link, `https://localhost:8443/app/add?product=${productId}#code=${code}`);
    // Each label's QR code, as a phone's camera reads it, holds that link; only its owner may read the file.
    assert.deepEqual(readdirSync(labels).sort(), ['BOX-1.svg', 'BOX-2.svg', 'BOX-3.svg']);
    for (const [serial, , , link] of rows) {
      assert.equal(readSvgQr(readFileSync(join(labels, `${serial}.svg`), 'utf8')), link);
      assert.equal(statSync(join(labels, `${serial}.svg`)).mode & 0o777, 0o600);
    }
    // A folder with labels in it already is refused before any code is made.
    const again = await bulwark(['devices', 'claim-codes', ...d, 'BOX-1', '--labels', labels]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /new or empty folder/);

    const shown = await bulwark(['devices', 'binding', ...d, 'BOX-1', '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const view = JSON.parse(shown.stdout);
    assert.equal(view.bound, false);
    assert.equal(view.claimCode.usedAt, null);
    assert.ok(!shown.stdout.includes(rows[0]![2]!) && !shown.stdout.includes(claimCodeHash(normalizeClaimCode(rows[0]![2]!)!)));

    const unknown = await bulwark(['devices', 'claim-codes', ...d, 'NO-SUCH']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /not found/);
  });
});
