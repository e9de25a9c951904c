import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyCustodyError, SecretBox, SoftwareKek } from './custody.js';
import { createMasterKeyFile, loadMasterKey, masterKeyPath, previousMasterKeyPath, readKeyFile, writeKeyFileAtomic } from './master-key.js';

describe('envelope encryption', () => {
  it('seals each value under its own data key, wrapped under the master key (v2)', () => {
    const box = new SecretBox(randomBytes(32));
    const a = box.seal('same secret', 'ctx').split('.');
    const b = box.seal('same secret', 'ctx').split('.');
    assert.deepEqual([a[0], a[1], a.length], ['v2', box.keyId, 4]);
    assert.notEqual(a[2], b[2], 'a fresh data key per value');
  });

  it('still opens values sealed directly under the master key (v1)', () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from('user:1:totp'));
    const body = Buffer.concat([cipher.update('legacy'), cipher.final(), cipher.getAuthTag()]);
    const v1 = ['v1', new SoftwareKek(key).id, iv.toString('base64url'), body.toString('base64url')].join('.');
    const box = new SecretBox(key);
    assert.equal(box.openText(v1, 'user:1:totp'), 'legacy');
    assert.throws(
      () => box.open(v1, 'user:2:totp'),
      (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.sealed_tampered',
    );
    assert.match(box.rewrap(v1, 'user:1:totp')!, /^v2\./);
  });

  it('re-wraps only the data key: the encrypted body is kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-custody-'));
    try {
      createMasterKeyFile(dir);
      const box = loadMasterKey(dir, {});
      const sealed = box.seal('secret', 'ctx');
      writeKeyFileAtomic(previousMasterKeyPath(dir), readKeyFile(masterKeyPath(dir)));
      writeKeyFileAtomic(masterKeyPath(dir), randomBytes(32));
      const rewrapped = box.rewrap(sealed, 'ctx')!;
      assert.notEqual(rewrapped.split('.')[1], sealed.split('.')[1]);
      assert.equal(rewrapped.split('.')[3], sealed.split('.')[3]);
      assert.equal(box.rewrap(rewrapped, 'ctx'), null, 'already under the current key');
      assert.equal(box.openText(rewrapped, 'ctx'), 'secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows the key files: a new master key is used for the next seal, the old one still opens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-custody-'));
    try {
      createMasterKeyFile(dir);
      const box = loadMasterKey(dir, {});
      const before = box.seal('old', 'ctx');
      writeKeyFileAtomic(previousMasterKeyPath(dir), readKeyFile(masterKeyPath(dir)));
      writeKeyFileAtomic(masterKeyPath(dir), randomBytes(32));
      const after = box.seal('new', 'ctx');
      assert.notEqual(after.split('.')[1], before.split('.')[1]);
      assert.equal(box.openText(before, 'ctx'), 'old');
      // A node started later, with only the new key, reads what was sealed under it.
      rmSync(previousMasterKeyPath(dir));
      assert.equal(loadMasterKey(dir, {}).openText(after, 'ctx'), 'new');
      assert.throws(
        () => loadMasterKey(dir, {}).open(before, 'ctx'),
        (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.wrong_master_key',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
