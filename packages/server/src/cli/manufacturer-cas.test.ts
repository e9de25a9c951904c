/**
 * `bulwark pki manufacturer-ca` and `bulwark devices enrollment-policy` as child processes on a
 * temporary SQLite data directory: a challenge signed by openssl with the CA key registers the CA,
 * another key's signature does not; allow-lists are set, imported from a file and shown; revoking
 * quarantines on request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bulwark, initializedDataDir } from '../testing/cli.js';
import { opensslCa } from '../testing/est-client.js';
import { Openssl } from '../testing/openssl.js';

describe('bulwark pki manufacturer-ca, devices enrollment-policy (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  const ssl = new Openssl();
  before(async () => {
    ({ dir, args: d } = await initializedDataDir('jit-cli', async (platform, actor) => {
      await platform.devices.service.createProduct(actor, { name: 'Sensor' });
    }));
    await opensslCa(ssl, 'factory', '/CN=CLI Factory CA');
    await opensslCa(ssl, 'other', '/CN=Other CA');
  });
  after(() => {
    ssl.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const signedChallenge = async (key: string) => {
    const challenge = await bulwark(['pki', 'manufacturer-ca', 'challenge', ...d]);
    assert.equal(challenge.code, 0, challenge.stderr);
    ssl.write('challenge.txt', challenge.stdout.trim());
    await ssl.must(['dgst', '-sha256', '-sign', `${key}.key`, '-out', `${key}.sig`, 'challenge.txt']);
    return ['--challenge', challenge.stdout.trim(), '--signature-file', join(ssl.dir, `${key}.sig`)];
  };
  const register = async (key: string) =>
    bulwark([
      'pki',
      'manufacturer-ca',
      'register',
      ...d,
      '--name',
      'line-3',
      '--product',
      'Sensor',
      '--cert',
      join(ssl.dir, 'factory.pem'),
      '--device-id-prefix',
      'acme-',
      '--pending',
      '--json',
      ...(await signedChallenge(key)),
    ]);

  it('registers a CA only with its own key’s signature, lists and revokes it', async () => {
    const forged = await register('other');
    assert.equal(forged.code, 2, forged.stderr);
    assert.match(forged.stderr, /pki\.manufacturer_ca_proof_invalid/);
    const registered = await register('factory');
    assert.equal(registered.code, 0, registered.stderr);
    const ca = JSON.parse(registered.stdout) as { id: string; activation: string; deviceIdPrefix: string };
    assert.deepEqual([ca.activation, ca.deviceIdPrefix], ['pending', 'acme-']);
    const listed = await bulwark(['pki', 'manufacturer-ca', 'list', ...d, '--json']);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { manufacturerCas: { id: string; devicesRegistered: number }[] }).manufacturerCas.map((c) => [
        c.id,
        c.devicesRegistered,
      ]),
      [[ca.id, 0]],
    );
    const revoked = await bulwark(['pki', 'manufacturer-ca', 'revoke', 'line-3', ...d, '--quarantine']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked; 0 devices quarantined/);
    const again = await bulwark(['pki', 'manufacturer-ca', 'revoke', 'line-3', ...d]);
    assert.equal(again.code, 4, again.stderr);
  });

  it('sets a product’s allow-list, imports a serial file and shows it; refuses bad input with its code', async () => {
    const set = await bulwark([
      'devices',
      'enrollment-policy',
      'set',
      ...d,
      '--product',
      'Sensor',
      '--serial-pattern',
      'ACME-*',
      '--cidr',
      '10.0.0.0/8',
      '--daily-quota',
      '250',
      '--json',
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(
      (({ serialPatterns, sourceCidrs, dailyQuota }) => ({ serialPatterns, sourceCidrs, dailyQuota }))(JSON.parse(set.stdout)),
      { serialPatterns: ['ACME-*'], sourceCidrs: ['10.0.0.0/8'], dailyQuota: 250 },
    );
    const file = join(dir, 'serials.txt');
    writeFileSync(file, '# run 42\nSN-1\nSN-2\n\nSN-2\n');
    const imported = await bulwark([
      'devices',
      'enrollment-policy',
      'import-serials',
      ...d,
      '--product',
      'Sensor',
      '--file',
      file,
      '--json',
    ]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual((({ serialList, serialsListed }) => [serialList, serialsListed])(JSON.parse(imported.stdout)), [true, 2]);
    const shown = await bulwark(['devices', 'enrollment-policy', 'show', ...d, '--product', 'Sensor']);
    assert.match(shown.stdout, /serial list: on, 2 serials/);
    assert.match(shown.stdout, /daily quota: 250; registered today: 0/);
    const badCidr = await bulwark(['devices', 'enrollment-policy', 'set', ...d, '--product', 'Sensor', '--cidr', 'ten.0.0.0/8']);
    assert.equal(badCidr.code, 2, badCidr.stderr);
    assert.match(badCidr.stderr, /enrollment_policy\.invalid/);
    const both = await bulwark(['devices', 'enrollment-policy', 'show', ...d]);
    assert.equal(both.code, 2, both.stderr);
  });
});
