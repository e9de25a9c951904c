import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyExposedError } from './errors.js';
import { IdentityStore, KEY_FILE } from './identity.js';
import { generateDeviceKey } from './keys.js';
import { tempDir } from './testing/temp.js';

describe('identity directory', () => {
  const dirs: { remove(): void }[] = [];
  after(() => dirs.forEach((d) => d.remove()));
  const fresh = () => {
    const d = tempDir('identity');
    dirs.push(d);
    return join(d.dir, 'id');
  };

  it('creates the directory 0700 and the key 0600', () => {
    const dir = fresh();
    const store = new IdentityStore(dir);
    store.installPair(generateDeviceKey(), 'cert');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
  });

  it('refuses a key file readable by group or others, naming the fix', () => {
    const dir = fresh();
    const store = new IdentityStore(dir);
    store.installPair(generateDeviceKey(), 'cert');
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(join(dir, KEY_FILE), mode);
      assert.throws(
        () => store.readKey(),
        (error: unknown) => error instanceof KeyExposedError && error.code === 'identity.key_exposed' && /chmod 600/.test(error.message),
      );
    }
    chmodSync(join(dir, KEY_FILE), 0o600);
    assert.match(store.readKey() as string, /BEGIN PRIVATE KEY/);
  });

  it('finishes a key swap interrupted after the certificate was renamed, and drops a certificate whose key never came', () => {
    const dir = fresh();
    const store = new IdentityStore(dir);
    store.installPair('old key', 'old cert');
    chmodSync(join(dir, KEY_FILE), 0o600);
    // Interrupted: the new certificate is in place, the new key still beside the old one.
    writeFileSync(join(dir, 'device.pem'), 'new cert');
    writeFileSync(join(dir, 'device.key.next'), 'new key', { mode: 0o600 });
    store.prepare();
    assert.equal(store.readKey(), 'new key');
    assert.equal(store.readCertificate(), 'new cert');
    // Interrupted before the key was written: the old pair stays.
    writeFileSync(join(dir, 'device.pem.next'), 'orphan cert');
    store.prepare();
    assert.equal(store.readCertificate(), 'new cert');
    assert.equal(existsSync(join(dir, 'device.pem.next')), false);
  });
});
