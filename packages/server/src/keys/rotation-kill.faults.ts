/**
 * A master-key rotation SIGKILLed (issue 17, failure scenarios): `bulwark keys rotate-master` is
 * killed twice while it re-wraps thousands of sealed values, the second time while it resumes the
 * first. After each kill every sealed value (database column and key file) still opens with the
 * key files the data directory holds (master.key and master.key.previous, the rotation's journal),
 * a node restarted on it serves (its sealed TLS and CA keys open) and warns that the rotation is
 * unfinished, and the next run finishes the job: every value under the new key, the previous key gone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { newUserRow } from '../accounts/store.js';
import { openDatabase, type DatabaseHandle } from '../storage/database.js';
import { bulwark, startCli } from '../testing/cli.js';
import { HttpClient } from '../testing/http.js';
import { startServerProcess } from '../testing/server-process.js';
import { loadMasterKey, previousMasterKeyPath } from './master-key.js';
import { readSealedFile, sealedFiles } from './sealed-values.js';

const USERS = 4000;

let dir: string;
let data: string;
let handle: DatabaseHandle;
/** Each user's TOTP secret in the clear. */
const secrets = new Map<string, string>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bulwark-rotation-kill-'));
  data = join(dir, 'data');
  const init = await bulwark(['init', '-d', data]);
  assert.equal(init.code, 0, init.stderr);
  handle = openDatabase({ url: 'sqlite', dataDir: data });
  const box = loadMasterKey(data, {});
  const org = await handle.db.selectFrom('organizations').select('id').executeTakeFirstOrThrow();
  await handle.db.transaction().execute(async (trx) => {
    for (let i = 0; i < USERS; i++) {
      const row = newUserRow({
        organizationId: org.id,
        kind: 'consumer',
        email: `kill-${i}@example.com`,
        name: 'K',
        role: null,
        passwordHash: 'x',
        emailVerifiedAt: null,
        mustChangePassword: false,
        now: Date.now(),
      });
      const secret = randomBytes(20).toString('hex');
      row.mfa_secret = box.seal(secret, `user:${row.id}:totp`);
      await trx.insertInto('users').values(row).execute();
      secrets.set(row.id, secret);
    }
  });
});
after(async () => {
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The TOTP secrets whose value is under `keyId`. */
async function under(keyId: string): Promise<number> {
  const row = await handle.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('mfa_secret', 'like', `v2.${keyId}.%`)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Opens every sealed value with the key files of the data directory, as a restarted node would. */
async function everythingOpens(): Promise<string[]> {
  const box = loadMasterKey(data, {});
  const users = await handle.db.selectFrom('users').select(['id', 'mfa_secret']).where('mfa_secret', 'is not', null).execute();
  let checked = 0;
  for (const u of users) {
    const expected = secrets.get(u.id);
    if (expected === undefined) continue; // the owner bulwark init made
    assert.equal(box.openText(u.mfa_secret!, `user:${u.id}:totp`), expected);
    checked++;
  }
  assert.equal(checked, USERS);
  for (const file of sealedFiles(data)) assert.match(box.openText(readSealedFile(file), file.context), /BEGIN PRIVATE KEY/);
  return box.keyIds();
}

/** Starts rotate-master and SIGKILLs it once at least `fraction` of the values are under the key replacing `oldKeyId`. */
async function killRotationAt(oldKeyId: string, fraction: number): Promise<void> {
  const child = startCli(['keys', 'rotate-master', '-d', data]);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.ok(child.exitCode === null, `the rotation ended before it was killed: ${stderr}`);
    assert.ok(Date.now() < deadline, 'the rotation never got going');
    const keyId = loadMasterKey(data, {}).keyId;
    if (keyId !== oldKeyId && (await under(keyId)) >= fraction * USERS) break;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  child.kill('SIGKILL');
  await exited;
}

test('a master-key rotation SIGKILLed twice mid-way leaves every sealed value readable, and the next run finishes it', async () => {
  const original = loadMasterKey(data, {}).keyId;

  await killRotationAt(original, 0.15);
  const afterFirst = await everythingOpens();
  assert.equal(afterFirst.length, 2, 'the new key and the one it replaces (master.key.previous, the journal)');
  assert.equal(afterFirst[1], original);
  const newKey = afterFirst[0]!;
  const halfway = await under(newKey);
  assert.ok(halfway > 0 && halfway < USERS, `${halfway} of ${USERS} values re-wrapped when killed`);
  console.log(`first kill: ${halfway} of ${USERS} values under the new key`);

  // A node restarted on the half-rotated directory opens its sealed TLS and CA keys, serves, and says what to do.
  const node = await startServerProcess(data, readFileSync(join(data, 'pki', 'ca.pem'), 'utf8'), { BULWARK_LOG_LEVEL: 'warn' });
  const api = new HttpClient(`https://localhost:${node.httpsPort}`, node.ca);
  try {
    const ready = await api.get('/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.match(node.output(), /master-key rotation unfinished/);
  } finally {
    api.close();
    assert.equal(await node.stop(), 0);
  }

  // Killed again while it resumes: the same two keys, more values moved, still everything opens.
  await killRotationAt(original, 0.6);
  assert.deepEqual(await everythingOpens(), afterFirst, 'a resumed rotation keeps the key it started with');
  const further = await under(newKey);
  assert.ok(further > halfway && further < USERS, `${further} of ${USERS} values re-wrapped at the second kill`);
  console.log(`second kill: ${further} of ${USERS} values under the new key`);

  const finished = await bulwark(['keys', 'rotate-master', '-d', data, '--json']);
  assert.equal(finished.code, 0, finished.stderr);
  const report = JSON.parse(finished.stdout) as { resumed: boolean; keyId: string; previousKeyId: string };
  assert.deepEqual([report.resumed, report.keyId, report.previousKeyId], [true, newKey, original]);
  assert.equal(existsSync(previousMasterKeyPath(data)), false, 'the previous key is removed once every value moved');
  assert.deepEqual(await everythingOpens(), [newKey]);
  const left = await handle.db.selectFrom('users').select('id').where('mfa_secret', 'not like', `v2.${newKey}.%`).execute();
  assert.deepEqual(left, [], 'no value left under the previous key');
  for (const file of sealedFiles(data)) assert.match(readSealedFile(file), new RegExp(`^v2\\.${newKey}\\.`));

  const verified = await bulwark(['audit', 'verify', '-d', data]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});
