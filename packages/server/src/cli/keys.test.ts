/**
 * `bulwark keys rotate-master` as an operator runs it: on a data directory made by `bulwark init`
 * (initializedDataDir), with the master key in a file or on a PKCS#11 token (`init --hsm-master-key`, SoftHSM).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadMasterKey,
  masterKeyPath,
  previousMasterKeyPath,
  previousTokenMasterKeyPath,
  readTokenKeyLabel,
  tokenMasterKeyPath,
} from '../keys/master-key.js';
import { createTestToken, softHsmSkip } from '../testing/softhsm.js';
import { bulwark, initializedDataDir } from '../testing/cli.js';

describe('bulwark keys rotate-master', () => {
  it('replaces the master key, re-wraps the sealed keys under DIR/pki, and leaves no previous key behind', async () => {
    const { dir, dataDir } = await initializedDataDir('cli-keys', async () => undefined);
    try {
      const before = loadMasterKey(dataDir, {}).keyId;
      const rotated = await bulwark(['keys', 'rotate-master', '--data-dir', dataDir, '--json']);
      assert.equal(rotated.code, 0, rotated.stderr);
      const report = JSON.parse(rotated.stdout);
      assert.equal(report.previousKeyId, before);
      assert.equal(loadMasterKey(dataDir, {}).keyId, report.keyId);
      assert.notEqual(report.keyId, before);
      assert.equal(report.rewrapped['pki/server.key.sealed'], 1);
      assert.equal(statSync(masterKeyPath(dataDir)).mode & 0o777, 0o600);
      assert.equal(existsSync(previousMasterKeyPath(dataDir)), false);
      assert.match(readFileSync(join(dataDir, 'pki', 'ca.key.sealed'), 'utf8'), new RegExp(`^v2\\.${report.keyId}\\.`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bulwark keys rotate-master with the master key on a PKCS#11 token', { skip: softHsmSkip }, () => {
  it('init --hsm-master-key writes no key file; rotate-master moves every sealed value to a new key on the token', async () => {
    const testToken = createTestToken('bulwark-cli-master');
    const dataDir = join(mkdtempSync(join(tmpdir(), 'bulwark-cli-keys-')), 'data');
    const hsm = { BULWARK_KEYS_PKCS11_TOKEN_LABEL: testToken.label, BULWARK_PKCS11_PIN: testToken.pin };
    try {
      const refused = await bulwark(['init', '--data-dir', dataDir, '--hsm-master-key']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /--hsm-master-key needs a PKCS#11 token.*\[config\.pkcs11_missing\]/);
      assert.equal(existsSync(dataDir), false, 'nothing created');

      const init = await bulwark(['init', '--data-dir', dataDir, '--hsm-master-key', '--json'], hsm);
      assert.equal(init.code, 0, init.stderr);
      assert.deepEqual([JSON.parse(init.stdout).masterKey, JSON.parse(init.stdout).masterKeyCreated], ['hsm', true]);
      assert.equal(existsSync(masterKeyPath(dataDir)), false, 'no key file');
      const firstLabel = readTokenKeyLabel(tokenMasterKeyPath(dataDir));

      const withoutPin = await bulwark(['keys', 'rotate-master', '--data-dir', dataDir], {
        BULWARK_KEYS_PKCS11_TOKEN_LABEL: testToken.label,
      });
      assert.equal(withoutPin.code, 2);
      assert.match(withoutPin.stderr, /BULWARK_PKCS11_PIN.*\[config\.pkcs11_pin_missing\]/);

      const rotated = await bulwark(['keys', 'rotate-master', '--data-dir', dataDir, '--json'], hsm);
      assert.equal(rotated.code, 0, rotated.stderr);
      const report = JSON.parse(rotated.stdout);
      assert.match(report.keyId, /^h[0-9a-f]{11}$/);
      assert.notEqual(report.keyId, report.previousKeyId);
      assert.equal(report.retiredTokenKeyLabel, firstLabel);
      assert.notEqual(readTokenKeyLabel(tokenMasterKeyPath(dataDir)), firstLabel);
      assert.equal(report.rewrapped['pki/server.key.sealed'], 1);
      assert.equal(report.rewrapped['keys/derivation.sealed'], 1);
      assert.match(readFileSync(join(dataDir, 'pki', 'server.key.sealed'), 'utf8'), new RegExp(`^v2\\.${report.keyId}\\.`));
      assert.equal(existsSync(previousTokenMasterKeyPath(dataDir)), false);
      assert.equal(existsSync(masterKeyPath(dataDir)), false);

      const again = await bulwark(['keys', 'rotate-master', '--data-dir', dataDir], hsm);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`Master key rotated: ${report.keyId} -> h[0-9a-f]{11}`));
      assert.match(again.stdout, /stays on the token as "bulwark-master-[0-9a-f]{12}"/);
    } finally {
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
      testToken.remove();
    }
  });
});
