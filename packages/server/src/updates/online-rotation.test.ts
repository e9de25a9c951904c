/**
 * `rotate-online` through the API on both engines: staged keys sign nothing until a root signed
 * offline names them alone; then the repository switches at once, a TUF client (tuf-js) pinned to
 * the first root follows the chain and accepts the new keys' metadata, and metadata signed with a
 * retired key is refused. Cancelling drops the staged keys; every step is audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, MetadataKind, type Root } from '@tufjs/models';
import { Updater } from 'tuf-js';
import { tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { operatorSession, ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { CaTrustingFetcher } from '../testing/tuf-fetcher.js';
import { onlineKeysFromJson } from './tuf/offline.js';
import { signTimestamp } from './tuf/online.js';
import * as store from './tuf/metadata-store.js';

for (const engine of ENGINES) {
  describe(`online key rotation [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let org: string;
    let ceremony: TestCeremony;
    let work: string;
    let firstRoot: Metadata<Root>;
    let cancelledPlan: Record<string, unknown>;

    before(async () => {
      t = await startTestPlatform(engine);
      org = await organizationIdOf(t.platform, t.org);
      const product = await testProduct(t.platform, org);
      token = (await ownerSession(t)).token;
      work = mkdtempSync(join(tmpdir(), 'bulwark-online-rotation-'));
      const keys = await t.client().get('/api/v1/updates/repository/online-keys', { token });
      ceremony = new TestCeremony(onlineKeysFromJson(keys.body), t.clock.now());
      firstRoot = signedBy(ceremony.root(), ...ceremony.rootKeys);
      const res = await post('/api/v1/updates/repository/root', {
        root: firstRoot.toJSON(),
        directorRoot: ceremony.directorRoot().toJSON(),
      });
      assert.equal(res.status, 200, res.text);
      const targets = await post('/api/v1/updates/repository/targets', ceremony.targets([product]).toJSON());
      assert.equal(targets.status, 200, targets.text);
    });
    after(async () => {
      await t?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    const post = (path: string, body: unknown, as = token) => t.client().post(path, body, { token: as });
    const rootOf = (json: unknown) => Metadata.fromJSON(MetadataKind.Root, json as never) as Metadata<Root>;
    const timestampKeyId = async () => {
      const file = await t.platform.updates.repository.metadataFile(org, 'timestamp.json');
      return (JSON.parse(file!.json) as { signatures: { keyid: string }[] }).signatures[0]!.keyid;
    };
    const actions = async () =>
      (await t.platform.db.selectFrom('audit_log').select(['action', 'outcome']).where('action', 'like', 'update.online%').execute()).map(
        (a) => `${a.action} ${a.outcome}`,
      );

    /** A TUF client that trusts only the first root. */
    function client(name: string): Updater {
      const dir = join(work, name);
      mkdirSync(join(dir, 'targets'), { recursive: true });
      writeFileSync(join(dir, 'root.json'), JSON.stringify(firstRoot.toJSON()));
      const baseUrl = `https://localhost:${t.server.port}`;
      return new Updater({
        metadataDir: dir,
        metadataBaseUrl: baseUrl + tufMetadataPath(org),
        targetDir: join(dir, 'targets'),
        targetBaseUrl: baseUrl + tufTargetsPath(org),
        fetcher: new CaTrustingFetcher(t.ca),
      });
    }

    it('refuses to start without org:manage, and with an unknown role', async () => {
      const operator = await operatorSession(t, token, 'release@example.com', 'release_engineer');
      const denied = await post('/api/v1/updates/repository/online-keys/rotate', {}, operator.token);
      assert.equal(denied.status, 403, denied.text);
      const unknown = await post('/api/v1/updates/repository/online-keys/rotate', { roles: ['root'] });
      assert.equal(unknown.status, 400, unknown.text);
      const none = await t.client().delete('/api/v1/updates/repository/online-keys/rotation', { token });
      assert.equal(none.body.error?.code, 'update.online_rotation_none', none.text);
    });

    it('stages new keys and answers unsigned next roots naming them; the current keys go on signing', async () => {
      const before = await timestampKeyId();
      const res = await post('/api/v1/updates/repository/online-keys/rotate', {});
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.roles, ['snapshot', 'timestamp', 'director']);
      const root = rootOf(res.body.root);
      assert.equal(root.signed.version, 2);
      assert.deepEqual(root.signatures, {});
      assert.deepEqual(root.signed.roles.timestamp!.keyIDs, [res.body.pending.timestamp.keyid]);
      assert.notEqual(res.body.pending.timestamp.keyid, before);
      assert.deepEqual(root.signed.roles.root!.keyIDs, firstRoot.signed.roles.root!.keyIDs, 'same root keys');
      assert.deepEqual(rootOf(res.body.directorRoot).signed.roles.targets!.keyIDs, [res.body.pending.director.keyid]);
      assert.equal(await timestampKeyId(), before);
      const again = await post('/api/v1/updates/repository/online-keys/rotate', { roles: ['timestamp'] });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'update.online_rotation_pending');
      cancelledPlan = res.body;
    });

    it('does not switch on a root that does not name the staged keys', async () => {
      const before = await timestampKeyId();
      const res = await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(2), ...ceremony.rootKeys).toJSON() });
      assert.equal(res.status, 200, res.text);
      assert.equal(await timestampKeyId(), before, 'still the current key');
      const plan = await t.client().get('/api/v1/updates/repository/online-keys/rotation', { token });
      assert.equal(plan.status, 200, plan.text);
      assert.equal(rootOf(plan.body.root).signed.version, 3, 'the plan follows the current root');
    });

    it('cancels: a root naming the cancelled keys is refused', async () => {
      const res = await t.client().delete('/api/v1/updates/repository/online-keys/rotation', { token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.cancelled, ['snapshot', 'timestamp', 'director']);
      const json = cancelledPlan.root as { signed: Record<string, unknown> };
      const root = rootOf({ ...json, signed: { ...json.signed, version: 3 } });
      const upload = await post('/api/v1/updates/repository/root', { root: signedBy(root, ...ceremony.rootKeys).toJSON() });
      assert.equal(upload.status, 409, upload.text);
      assert.equal(upload.body.error.code, 'update.online_key_mismatch');
    });

    it('switches when the signed root arrives: a client pinned to root 1 follows and accepts the new keys, and refuses the retired one', async () => {
      const oldTimestamp = await timestampKeyId();
      const started = await post('/api/v1/updates/repository/online-keys/rotate', { roles: ['snapshot', 'timestamp'] });
      assert.equal(started.status, 200, started.text);
      assert.equal(started.body.directorRoot, null);
      const root = signedBy(rootOf(started.body.root), ...ceremony.rootKeys);
      const res = await post('/api/v1/updates/repository/root', { root: root.toJSON() });
      assert.equal(res.status, 200, res.text);
      assert.equal(await timestampKeyId(), started.body.pending.timestamp.keyid);

      const updater = client('follower');
      await updater.refresh();
      assert.ok(await updater.getTargetInfo('nothing/here.bin').then(() => true), 'refreshed through root 3');

      // An attacker holding the retired timestamp key signs a newer timestamp over the current snapshot.
      const retired = await t.platform.db
        .selectFrom('signing_keys')
        .select(['id', 'private_key', 'retired_at'])
        .where('purpose', '=', `tuf-timestamp:${org}`)
        .where('retired_at', 'is not', null)
        .execute();
      assert.equal(retired.length, 1, 'the old key is retired, kept for the record');
      const oldKey = createPrivateKey(t.platform.box.openText(retired[0]!.private_key, `signing-key:${retired[0]!.id}`));
      const snapshot = (await store.latest(t.platform.db, org, 'snapshot'))!;
      const current = (await store.latest(t.platform.db, org, 'timestamp'))!;
      const { createPublicKey, sign } = await import('node:crypto');
      const forged = signTimestamp(
        { id: 'x', publicKey: createPublicKey(oldKey), sign: (data) => sign(null, data, oldKey).toString('base64') },
        current.version + 1,
        snapshot,
        t.clock.now(),
        3600,
      );
      assert.equal(JSON.parse(forged.json).signatures[0].keyid, oldTimestamp);
      await store.insert(t.platform.db, { ...current, version: forged.version, json: forged.json, expires_at: forged.expiresAt });
      // Written beside the platform, as another process would: served once this process forgets what it kept (or a second later).
      t.platform.updates.repository.metadataChanged(org);
      await assert.rejects(client('attacked').refresh(), /timestamp was signed by 0\/1 keys/);
      await t.platform.db
        .deleteFrom('tuf_metadata')
        .where('organization_id', '=', org)
        .where('role', '=', 'timestamp')
        .where('version', '=', forged.version)
        .execute();
      t.platform.updates.repository.metadataChanged(org);
    });

    it('audits every step', async () => {
      const seen = await actions();
      for (const entry of [
        'update.online_rotation_started success',
        'update.online_rotation_cancelled success',
        'update.online_key_activated success',
      ])
        assert.ok(seen.includes(entry), `${entry} in ${seen.join(', ')}`);
      assert.equal(seen.filter((a) => a === 'update.online_key_activated success').length, 2, 'snapshot and timestamp');
    });
  });
}
