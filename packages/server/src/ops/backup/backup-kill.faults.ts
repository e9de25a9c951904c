/**
 * A backup killed mid-write (issue 17, failure scenarios): `bulwark backup create` is SIGKILLed
 * while it writes the archive. No file appears under the archive's name, what it left (the
 * temporary archive) does not verify as a backup, and the next backup to the same place works,
 * verifies and deletes the leftovers of the killed one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bulwark, startCli } from '../../testing/cli.js';

let dir: string;
let data: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bulwark-backup-kill-'));
  data = join(dir, 'data');
  const init = await bulwark(['init', '-d', data]);
  assert.equal(init.code, 0, init.stderr);
  // A large blob, so that the kill lands while the archive is being written.
  mkdirSync(join(data, 'blobs'), { recursive: true });
  writeFileSync(join(data, 'blobs', 'filler.bin'), randomBytes(192 * 1024 * 1024));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a backup SIGKILLed mid-write leaves no archive under its name, nothing that verifies, and the next backup works and clears the leftovers', async () => {
  const key = join(dir, 'backup.key');
  assert.equal((await bulwark(['backup', 'keygen', '--out', key])).code, 0);
  const out = join(dir, 'backups');
  mkdirSync(out);
  const archive = join(out, 'nightly.bwb');

  const child = startCli(['backup', 'create', '-d', data, '-o', archive, '--key-file', key]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const temporary = `${archive}.tmp-${child.pid}`;
  const deadline = Date.now() + 120_000;
  while (!(existsSync(temporary) && statSync(temporary).size > 4 * 1024 * 1024)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, 'the backup never got to writing its archive');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGKILL');
  await exited;

  assert.equal(existsSync(archive), false, 'no archive under its name');
  const left = readdirSync(out);
  assert.ok(left.includes(`nightly.bwb.tmp-${child.pid}`), left.join(', '));
  assert.ok(
    left.some((name) => name.startsWith(`.bulwark-backup-${child.pid}-`)),
    left.join(', '),
  );
  const partial = await bulwark(['backup', 'verify', temporary, '--key-file', key, '--deployment', '0'.repeat(64)]);
  assert.notEqual(partial.code, 0, 'the partial archive does not verify');

  const created = await bulwark(['backup', 'create', '-d', data, '-o', archive, '--key-file', key, '--json']);
  assert.equal(created.code, 0, created.stderr);
  const { deployment } = JSON.parse(created.stdout) as { deployment: string };
  assert.deepEqual(readdirSync(out), ['nightly.bwb'], 'the killed backup’s leftovers are gone');
  const verified = await bulwark(['backup', 'verify', archive, '--key-file', key, '--deployment', deployment]);
  assert.equal(verified.code, 0, verified.stderr);
});
