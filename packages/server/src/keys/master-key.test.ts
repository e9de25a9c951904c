import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { hkdfSync, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyCustodyError, SecretBox, createMasterKeyFile, loadMasterKey, masterKeyPath } from './master-key.js';

describe('master key and sealed secrets', () => {
  it('opens what it sealed, under the same context', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('totp-secret', 'user:1:totp');
    assert.doesNotMatch(sealed, /totp-secret/);
    assert.equal(box.openText(sealed, 'user:1:totp'), 'totp-secret');
  });

  it('refuses a sealed value moved to another context (row swap)', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('secret', 'user:1:totp');
    assert.throws(
      () => box.open(sealed, 'user:2:totp'),
      (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.sealed_tampered',
    );
  });

  it('refuses a tampered ciphertext', () => {
    const box = new SecretBox(randomBytes(32));
    const parts = box.seal('secret', 'ctx').split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 1;
    parts[3] = body.toString('base64url');
    assert.throws(() => box.open(parts.join('.'), 'ctx'), /failed authentication/);
  });

  it('cannot open secrets without the master key they were sealed under', () => {
    const sealed = new SecretBox(randomBytes(32)).seal('secret', 'ctx');
    assert.throws(
      () => new SecretBox(randomBytes(32)).open(sealed, 'ctx'),
      (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.wrong_master_key',
    );
  });

  it('creates the key file 0600 once and refuses a key file others can read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-keys-'));
    try {
      assert.equal(createMasterKeyFile(dir), true);
      assert.equal(createMasterKeyFile(dir), false, 'never overwritten');
      assert.equal(statSync(masterKeyPath(dir)).mode & 0o777, 0o600);
      const first = loadMasterKey(dir, {});
      assert.equal(loadMasterKey(dir, {}).keyId, first.keyId);
      chmodSync(masterKeyPath(dir), 0o644);
      assert.throws(
        () => loadMasterKey(dir, {}),
        (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.master_key_exposed',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('derives purpose keys from a software master key by HKDF over its bytes, as data directories made before the HSM source expect', () => {
    const key = randomBytes(32);
    const box = new SecretBox(key);
    assert.deepEqual(box.deriveKey('csrf'), Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'bulwark:csrf', 32)));
    assert.notDeepEqual(box.deriveKey('other'), box.deriveKey('csrf'));
  });

  it('explains how to create a missing master key, and takes one from BULWARK_MASTER_KEY', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-keys-'));
    try {
      assert.throws(() => loadMasterKey(dir, {}), /Run `bulwark init` first/);
      const key = randomBytes(32);
      assert.equal(loadMasterKey(dir, { BULWARK_MASTER_KEY: key.toString('base64') }).keyId, new SecretBox(key).keyId);
      assert.throws(() => loadMasterKey(dir, { BULWARK_MASTER_KEY: 'c2hvcnQ=' }), /must be 32 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
