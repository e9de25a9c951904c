/**
 * Online signing keys on the deployment's PKCS#11 token (keys.pkcs11.onlineSigningKeys, SoftHSM):
 * the TUF snapshot, timestamp and director keys and the audit checkpoint key are generated on the
 * token, the database holds only labels and public keys, signatures made there verify, the
 * private keys cannot be read, and a database row naming a key the token does not hold is refused.
 * An online key rotation stages its keys on the token too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform, type Platform } from '../platform.js';
import { createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { Pkcs11Error, Pkcs11Token } from './pkcs11.js';
import { rotateMasterKey } from './rotation.js';
import { Metadata, MetadataKind, type Root } from '@tufjs/models';
import { cliActor } from '../accounts/roles.js';
import { signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { tufKeyOf } from '../updates/tuf/keys.js';

describe('online signing keys on a PKCS#11 token', { skip: softHsmSkip, concurrency: 1 }, () => {
  let testToken: TestToken;
  let dataDir: string;
  let platform: Platform;
  let orgId: string;

  before(async () => {
    testToken = createTestToken('bulwark-online');
    dataDir = join(mkdtempSync(join(tmpdir(), 'bulwark-online-hsm-')), 'data');
    const env = { BULWARK_PKCS11_PIN: testToken.pin };
    const config = loadConfig({
      dataDir,
      env: { BULWARK_KEYS_PKCS11_TOKEN_LABEL: testToken.label, BULWARK_KEYS_PKCS11_ONLINE_SIGNING_KEYS: 'true' },
    });
    assert.equal(config.keys?.pkcs11?.onlineSigningKeys, true);
    const init = await initialize(config, DEFAULT_INIT, { env });
    platform = await openPlatform(config, { env });
    orgId = (await platform.accounts.store.organizationBySlug(init.organization.slug))!.id;
  });
  after(async () => {
    await platform?.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
    testToken?.remove();
  });

  it('generates the TUF online keys and the audit key on the token, and keeps only labels and public keys in the database', async () => {
    const online = await platform.updates.repository.onlineKeys(orgId);
    assert.ok(online.snapshot && online.timestamp && online.director);
    await platform.audit.checkpoint();
    const rows = await platform.db.selectFrom('signing_keys').select(['purpose', 'private_key', 'public_key']).execute();
    const purposes = rows.map((r) => r.purpose).sort();
    for (const expected of ['audit-checkpoint', `director:${orgId}`, `tuf-snapshot:${orgId}`, `tuf-timestamp:${orgId}`])
      assert.ok(purposes.includes(expected), `${expected} in ${purposes.join(', ')}`);
    for (const row of rows) {
      assert.match(row.private_key, /^pkcs11:bulwark-online-/, `${row.purpose}: a token label, not a sealed key`);
      assert.doesNotMatch(row.private_key, /PRIVATE KEY/);
    }
    const opened = Pkcs11Token.open({ tokenLabel: testToken.label, pin: testToken.pin });
    try {
      for (const row of rows) {
        const signer = opened.signer(row.private_key.slice('pkcs11:'.length));
        assert.equal(signer.algorithm, 'ed25519');
        assert.throws(() => opened.attribute(signer.privateKey, pkcs11js.CKA_VALUE), Pkcs11Error, `${row.purpose}: CKA_VALUE refused`);
      }
    } finally {
      opened.close();
    }
  });

  it('signs on the token: signatures verify with the published keys, and the audit chain verifies', async () => {
    const data = Buffer.from('signed on the token');
    for (const purpose of [`tuf-timestamp:${orgId}`, `director:${orgId}`]) {
      const key = await platform.signingKeys.current(purpose);
      const signature = Buffer.from(key.sign(data), 'base64');
      assert.ok(verify(null, data, key.publicKey, signature), purpose);
      assert.ok(await platform.signingKeys.verify(key.id, data, key.sign(data)));
      assert.ok(!verify(null, Buffer.from('something else'), key.publicKey, signature));
    }
    const director = await platform.updates.director.key(orgId);
    const directorKey = await platform.signingKeys.current(`director:${orgId}`);
    assert.ok(director.publicKey.equals(directorKey.publicKey), 'the director signs with the token key');
    const report = await platform.audit.verify();
    assert.ok(report.ok, JSON.stringify(report.problems));
    assert.ok(report.checkpoints >= 1);
  });

  it('leaves token-held keys to the token when the master key rotates, and they still sign', async () => {
    const before = await platform.db.selectFrom('signing_keys').select(['id', 'private_key']).orderBy('id').execute();
    const report = await rotateMasterKey({ dataDir, db: platform.db, box: platform.box, audit: platform.audit, env: {}, batch: 2 });
    assert.equal(report.rewrapped['signing_keys.private_key'] ?? 0, 0, 'no token key is taken for a sealed value');
    const after = await platform.db.selectFrom('signing_keys').select(['id', 'private_key']).orderBy('id').execute();
    assert.deepEqual(after, before);
    const key = await platform.signingKeys.current(`tuf-timestamp:${orgId}`);
    assert.ok(verify(null, Buffer.from('after rotation'), key.publicKey, Buffer.from(key.sign(Buffer.from('after rotation')), 'base64')));
  });

  it('refuses a database row naming a key the token does not hold, or a public key that is not the token key', async () => {
    const forged = `forged:${orgId}`;
    const real = await platform.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', `director:${orgId}`)
      .executeTakeFirstOrThrow();
    const other = await platform.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', `tuf-snapshot:${orgId}`)
      .executeTakeFirstOrThrow();
    await platform.db
      .insertInto('signing_keys')
      .values({ ...real, id: 'forged-1', purpose: forged, public_key: other.public_key })
      .execute();
    await assert.rejects(platform.signingKeys.current(forged), /does not match the public key on record/);
    await platform.db
      .insertInto('signing_keys')
      .values({ ...real, id: 'forged-2', purpose: `${forged}-2`, private_key: 'pkcs11:nobody-here' })
      .execute();
    await assert.rejects(platform.signingKeys.current(`${forged}-2`), Pkcs11Error);
    assert.equal(await platform.signingKeys.verify('forged-2', Buffer.from('x'), 'AAAA'), false);
  });

  it('stages a rotation on the token and, once the signed root names it, signs there with the new key', async () => {
    const ceremony = new TestCeremony(await platform.updates.repository.onlineKeys(orgId), Date.now());
    const actor = cliActor(orgId, 'test');
    await platform.updates.repository.acceptRoot(actor, { root: signedBy(ceremony.root(), ...ceremony.rootKeys).toJSON() });
    const plan = await platform.updates.onlineKeys.start(actor, ['timestamp']);
    const staged = await platform.db
      .selectFrom('signing_keys')
      .select('private_key')
      .where('purpose', '=', `pending:tuf-timestamp:${orgId}`)
      .executeTakeFirstOrThrow();
    assert.match(staged.private_key, /^pkcs11:bulwark-online-pending-/, 'generated on the token');
    const root = Metadata.fromJSON(MetadataKind.Root, plan.root as never) as Metadata<Root>;
    await platform.updates.repository.acceptRoot(actor, { root: signedBy(root, ...ceremony.rootKeys).toJSON() });
    const key = await platform.signingKeys.current(`tuf-timestamp:${orgId}`);
    assert.equal(tufKeyOf(key.publicKey).keyID, (plan.pending.timestamp as { keyid: string }).keyid);
    assert.ok(verify(null, Buffer.from('rotated'), key.publicKey, Buffer.from(key.sign(Buffer.from('rotated')), 'base64')));
  });
});
