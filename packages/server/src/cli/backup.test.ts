/**
 * The backup commands as an operator runs them (real child processes): keygen never overwrites,
 * create needs a key, verify and restore need the deployment named, an altered archive exits 3,
 * and a restored data directory passes `bulwark audit verify`; the drill is audited.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bulwark, initializedDataDir } from '../testing/cli.js';

let dir: string;
let data: string;
before(async () => {
  ({ dir, dataDir: data } = await initializedDataDir('cli-backup', async () => undefined));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('backup keygen, create, verify, restore and drill from the command line', async () => {
  const key = join(dir, 'backup.key');
  assert.equal((await bulwark(['backup', 'keygen', '--out', key])).code, 0);
  const again = await bulwark(['backup', 'keygen', '--out', key]);
  assert.equal(again.code, 5, again.stderr);
  assert.match(again.stderr, /backup\.key_exists/);

  const archive = join(dir, 'one.bwb');
  const keyless = await bulwark(['backup', 'create', '-d', data, '-o', archive]);
  assert.equal(keyless.code, 2);
  assert.match(keyless.stderr, /backup\.key_invalid/);

  const created = await bulwark(['backup', 'create', '-d', data, '-o', archive, '--key-file', key, '--json']);
  assert.equal(created.code, 0, created.stderr);
  const { deployment, keepApart } = JSON.parse(created.stdout) as { deployment: string; keepApart: string[] };
  assert.match(deployment, /^[0-9a-f]{64}$/);
  assert.ok(keepApart.some((what) => what.includes('master.key')));

  const unnamed = await bulwark(['backup', 'verify', archive, '--key-file', key]);
  assert.equal(unnamed.code, 2);
  assert.match(unnamed.stderr, /--deployment [0-9a-f]{64}/);
  assert.equal((await bulwark(['backup', 'verify', archive, '--key-file', key, '--deployment', deployment])).code, 0);

  const bytes = readFileSync(archive);
  bytes[bytes.length - 100]! ^= 0xff;
  writeFileSync(join(dir, 'altered.bwb'), bytes);
  const altered = await bulwark(['backup', 'verify', join(dir, 'altered.bwb'), '--key-file', key, '--deployment', deployment]);
  assert.equal(altered.code, 3, altered.stderr);
  assert.match(altered.stderr, /backup\.tampered/);

  const restored = join(dir, 'restored');
  const restore = await bulwark([
    'restore',
    archive,
    '-d',
    restored,
    '--key-file',
    key,
    '--deployment',
    deployment,
    '--master-key',
    join(data, 'keys', 'master.key'),
  ]);
  assert.equal(restore.code, 0, restore.stderr);
  const verify = await bulwark(['audit', 'verify', '-d', restored]);
  assert.equal(verify.code, 0, verify.stderr);

  const drill = await bulwark(['backup', 'drill', archive, '-d', data, '--key-file', key]);
  assert.equal(drill.code, 0, drill.stderr);
  assert.match(drill.stdout, /Restore drill PASSED/);
  const exported = await bulwark(['audit', 'export', '-d', data]);
  assert.match(exported.stdout, /"backup\.drilled"/);
  assert.match(exported.stdout, /"backup\.created"/);
});
