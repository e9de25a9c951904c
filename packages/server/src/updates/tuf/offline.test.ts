import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import { checkProductMetadata, checkRoot, checkTopLevelTargets } from './accept.js';
import { keyHolder, signedBy, TestCeremony } from '../../testing/tuf-ceremony.js';
import {
  addImageTarget,
  delegateProduct,
  expiresIn,
  generateKeyFiles,
  loadPrivateKey,
  loadPublicKey,
  publicKeyOf,
  readRoot,
  writeMetadata,
} from './offline.js';

const online = { organizationId: 'org', snapshot: keyHolder().key, timestamp: keyHolder().key, director: keyHolder().key };
const now = Date.UTC(2026, 5, 1);

describe('offline signing library', () => {
  it('writes a passphrase-encrypted private key (0600) whose public file carries the computed key ID', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-keys-'));
    try {
      const written = generateKeyFiles(join(dir, 'root-1'), 'passphrase one');
      assert.equal(statSync(written.keyPath).mode & 0o777, 0o600);
      assert.match(readFileSync(written.keyPath, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
      const warnings: string[] = [];
      assert.equal(
        publicKeyOf(loadPrivateKey(written.keyPath, 'passphrase one', (w) => warnings.push(w))).keyID,
        loadPublicKey(written.pubPath).keyID,
      );
      assert.deepEqual(warnings, [], 'a key written now is at the policy');
      assert.throws(() => loadPrivateKey(written.keyPath, 'wrong passphrase', () => undefined), { code: 'keys.passphrase_wrong' });
      assert.throws(
        () => generateKeyFiles(join(dir, 'root-1'), 'passphrase one'),
        { code: 'keys.key_file_exists' },
        'never overwrites a key',
      );
      assert.throws(() => generateKeyFiles(join(dir, 'root-2'), 'a'), { code: 'keys.passphrase_weak' });
      const pub = JSON.parse(readFileSync(written.pubPath, 'utf8'));
      writeFileSync(join(dir, 'tampered.pub'), JSON.stringify({ ...pub, keyid: 'a'.repeat(64) }));
      assert.throws(() => loadPublicKey(join(dir, 'tampered.pub')), /computed key ID/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds roots that round-trip through a file and pass the rotation rule only with both thresholds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-root-'));
    try {
      const ceremony = new TestCeremony(online, now);
      const first = signedBy(ceremony.root(), ...ceremony.rootKeys);
      writeMetadata(join(dir, 'root.json'), first);
      const reread = readRoot(join(dir, 'root.json'));
      checkRoot(reread, null, now, 'root');
      const newKeys = [keyHolder(), keyHolder()];
      const second = ceremony.root(2, newKeys);
      assert.throws(() => checkRoot(signedBy(ceremony.root(2, newKeys), ...newKeys), reread, now, 'root'), {
        code: 'update.metadata_rejected',
      });
      assert.throws(() => checkRoot(signedBy(ceremony.root(2, newKeys), ...ceremony.rootKeys), reread, now, 'root'), /its own root/);
      checkRoot(signedBy(second, ...ceremony.rootKeys, ...newKeys), reread, now, 'root');
      assert.throws(() => checkRoot(first, null, Date.parse(first.signed.expires), 'root'), /expired/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the other product lines when delegating one, and keeps earlier images when adding one', () => {
    const ceremony = new TestCeremony(online, now);
    const root = signedBy(ceremony.root(), ...ceremony.rootKeys);
    const targets = ceremony.targets(['alpha', 'beta']);
    const next = delegateProduct(targets, { productId: 'beta', keys: [keyHolder().key], threshold: 1, expires: expiresIn(30, now) });
    assert.deepEqual(Object.keys(next.signed.delegations!.roles!).sort(), ['product-alpha', 'product-beta']);
    checkTopLevelTargets(targets, root, null, now);

    const v1 = ceremony.image(null, { productId: 'alpha', version: '1.0.0', length: 10, sha256: 'a'.repeat(64) });
    const v2 = ceremony.image(v1, { productId: 'alpha', version: '1.1.0', length: 20, sha256: 'b'.repeat(64) });
    assert.deepEqual(Object.keys(v2.signed.targets).sort(), ['alpha/firmware-1.0.0.bin', 'alpha/firmware-1.1.0.bin']);
    assert.equal(v2.signed.version, 2);
    checkProductMetadata(v2, 'alpha', targets, v1, now);
    assert.throws(() => checkProductMetadata(v1, 'alpha', targets, v2, now), /version must increase/);
    assert.throws(
      () => checkProductMetadata(v2, 'beta', targets, null, now),
      { code: 'update.metadata_rejected' },
      'alpha images are outside beta',
    );
    const reparsed = Metadata.fromJSON(MetadataKind.Targets, JSON.parse(JSON.stringify(v2.toJSON())));
    assert.deepEqual(reparsed.signed.targets['alpha/firmware-1.1.0.bin']!.custom, {
      product: 'alpha',
      version: '1.1.0',
      securityVersion: 1,
      hardwareIds: ['hw-rev-a'],
    });
  });

  it('refuses product IDs that would act as glob or path characters in a delegation', () => {
    for (const productId of ['*', 'a/b', '..', 'a?', '[ab]', '']) {
      assert.throws(
        () => delegateProduct(null, { productId, keys: [keyHolder().key], threshold: 1, expires: expiresIn(1, now) }),
        /product ID/,
      );
      assert.throws(
        () =>
          addImageTarget(null, {
            product: productId,
            version: '1.0.0',
            securityVersion: 0,
            hardwareIds: ['x'],
            length: 1,
            sha256: 'a'.repeat(64),
            expires: expiresIn(1, now),
          }),
        /product ID/,
      );
    }
  });
});
