/**
 * `bulwark devices symmetric-key | enrollment-group | sas-token` as child processes on a temporary
 * SQLite data directory (initialized in-process); tokens the CLI signs are checked by the service.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../ops/config.js';
import { openPlatform } from '../platform.js';
import { deriveDeviceKey } from '../devices/sas.js';
import { bulwark, initializedDataDir } from '../testing/cli.js';

describe('bulwark devices symmetric-key, enrollment-group, sas-token (CLI, SQLite)', () => {
  let dir: string;
  let dataDir: string;
  let d: string[];
  let deviceId: string;
  before(async () => {
    ({
      dir,
      dataDir,
      args: d,
    } = await initializedDataDir('symmetric-cli', async (platform, actor) => {
      const product = await platform.devices.service.createProduct(actor, { name: 'Sensor' });
      deviceId = (await platform.devices.service.register(actor, { serial: 'CLI-1', productId: product.id })).id;
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('issues a key into a 0600 file, signs a token with it that the service accepts, and manages enrollment groups', async () => {
    const keyFile = join(dir, 'device.key');
    const [issued, group, unknown, badGrace] = await Promise.all([
      bulwark(['devices', 'symmetric-key', 'CLI-1', ...d, '--key-file', keyFile, '--json']),
      bulwark(['devices', 'enrollment-group', 'create', '--name', 'line-1', '--product', 'Sensor', ...d, '--json']),
      bulwark(['devices', 'symmetric-key', 'NOPE', ...d]),
      bulwark(['devices', 'symmetric-key', 'CLI-1', ...d, '--grace-seconds', 'soon']),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
    const out = JSON.parse(issued.stdout) as { deviceId: string; version: number; key?: string; keyFile: string };
    assert.deepEqual([out.deviceId, out.version, out.key, out.keyFile], [deviceId, 1, undefined, keyFile]);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64').length, 32);
    assert.equal(group.code, 0, group.stderr);
    const created = JSON.parse(group.stdout) as { id: string; key: string };
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.equal(badGrace.code, 2, badGrace.stderr);

    const derivedKeyFile = join(dir, 'derived.key');
    writeFileSync(derivedKeyFile, deriveDeviceKey(created.key, 'CLI-2').toString('base64'), { mode: 0o600 });
    const [signed, registration, listed, disabled, tooLong, overwrite] = await Promise.all([
      bulwark(['devices', 'sas-token', '--key-file', keyFile, '--device', deviceId, '--ttl', '600']),
      bulwark(['devices', 'sas-token', '--key-file', derivedKeyFile, '--group', created.id, '--registration-id', 'CLI-2', '--json']),
      bulwark(['devices', 'enrollment-group', 'list', ...d, '--json']),
      bulwark(['devices', 'enrollment-group', 'disable', 'line-1', ...d]),
      bulwark(['devices', 'sas-token', '--key-file', keyFile, '--device', deviceId, '--ttl', '999999']),
      bulwark(['devices', 'symmetric-key', 'CLI-1', ...d, '--key-file', keyFile]),
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.equal(registration.code, 0, registration.stderr);
    assert.equal(JSON.parse(registration.stdout).resource, `registrations/${created.id}/CLI-2`);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { groups: { name: string }[] }).groups.map((g) => g.name),
      ['line-1'],
    );
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /disabled/);
    assert.equal(tooLong.code, 2, tooLong.stderr);
    assert.equal(overwrite.code, 2, 'an existing key file is never overwritten');

    const config = loadConfig({ dataDir, env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      const identity = await platform.devices.symmetricKeys.authenticate(deviceId, signed.stdout.trim());
      assert.deepEqual([identity.serial, identity.credential.type], ['CLI-1', 'symmetric_key']);
      // The refused overwrite rotated nothing: version 1 is still the current key.
      assert.equal(identity.credential.type === 'symmetric_key' && identity.credential.keyVersion, 1);
    } finally {
      await platform.close();
    }
    const again = await bulwark(['devices', 'enrollment-group', 'disable', 'line-1', ...d]);
    assert.equal(again.code, 5, again.stderr);
  });
});
