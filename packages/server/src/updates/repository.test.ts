import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Key, type Metadata, type Targets } from '@tufjs/models';
import { Updater } from 'tuf-js';
import { ExpiredMetadataError } from 'tuf-js/dist/error.js';
import { targetNameOf, tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { operatorSession, ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { keyHolder, signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { CaTrustingFetcher } from '../testing/tuf-fetcher.js';
import { onlineKeysFromJson } from './tuf/offline.js';
import { onlineSigner } from './tuf/online.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [{ type: 'library', name: 'zlib', version: '1.3.1' }] };

for (const engine of ENGINES) {
  describe(`TUF image repository and releases [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let org: string;
    let product: string;
    let gateway: string;
    let ceremony: TestCeremony;
    let work: string;
    let productMetadata: Metadata<Targets> | null = null;
    let topLevel: Metadata<Targets>;
    const image = randomBytes(40_000);
    const sha256 = createHash('sha256').update(image).digest('hex');

    before(async () => {
      t = await startTestPlatform(engine);
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      gateway = await testProduct(t.platform, org, 'Gateway');
      token = (await ownerSession(t)).token;
      work = mkdtempSync(join(tmpdir(), 'bulwark-tuf-'));
    });
    after(async () => {
      await t?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    const post = (path: string, body: unknown, as = token) => t.client().post(path, body, { token: as });
    const baseUrl = () => `https://localhost:${t.server.port}`;
    const release = (version: string, metadata: Metadata<Targets>, productId = product) =>
      post('/api/v1/updates/releases', { productId, version, notes: `Release ${version}`, sbom: SBOM, metadata: metadata.toJSON() });

    /** A TUF client (tuf-js, written by others) that trusts only the first root. */
    function client(name: string): Updater {
      const dir = join(work, name);
      mkdirSync(join(dir, 'targets'), { recursive: true });
      writeFileSync(join(dir, 'root.json'), readFileSync(join(work, '1.root.json')));
      return new Updater({
        metadataDir: dir,
        metadataBaseUrl: baseUrl() + tufMetadataPath(org),
        targetDir: join(dir, 'targets'),
        targetBaseUrl: baseUrl() + tufTargetsPath(org),
        fetcher: new CaTrustingFetcher(t.ca),
      });
    }

    it('hands out the online keys the root must name, the same on every call', async () => {
      const first = await t.client().get('/api/v1/updates/repository/online-keys', { token });
      assert.equal(first.status, 200, first.text);
      const again = await t.client().get('/api/v1/updates/repository/online-keys', { token });
      assert.deepEqual(again.body, first.body);
      ceremony = new TestCeremony(onlineKeysFromJson(first.body), t.clock.now());
    });

    it('refuses a first root signed by fewer root keys than its threshold', async () => {
      const res = await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(), ceremony.rootKeys[0]!).toJSON() });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'update.metadata_rejected');
      assert.equal(res.body.error.details.reason, 'signature');
    });

    it('refuses a root that lists one key under two key IDs to meet a threshold of two alone', async () => {
      const holder = ceremony.rootKeys[0]!;
      const root = ceremony.root();
      const fakeId = 'f'.repeat(64);
      root.signed.keys[fakeId] = new Key({ keyID: fakeId, keyType: 'ed25519', scheme: 'ed25519', keyVal: holder.key.keyVal });
      root.signed.roles.root = Object.assign(Object.create(Object.getPrototypeOf(root.signed.roles.root)), {
        keyIDs: [holder.key.keyID, fakeId],
        threshold: 2,
      });
      signedBy(root, holder);
      const json = root.toJSON() as { signatures: { keyid: string; sig: string }[] };
      json.signatures.push({ keyid: fakeId, sig: json.signatures[0]!.sig });
      const res = await post('/api/v1/updates/repository/root', { root: json });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'keys');
    });

    it('refuses a root naming online keys this server does not hold, telling to run the ceremony', async () => {
      const other = new TestCeremony({ ...ceremony.online, timestamp: keyHolder().key }, t.clock.now());
      const res = await post('/api/v1/updates/repository/root', { root: signedBy(other.root(), ...other.rootKeys).toJSON() });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error.code, 'update.online_key_mismatch');
      assert.match(res.body.error.message, /online-keys/);
    });

    it('refuses root uploads from an operator without org:manage', async () => {
      const operator = await operatorSession(t, token, 'release@example.com', 'release_engineer');
      const res = await post(
        '/api/v1/updates/repository/root',
        { root: signedBy(ceremony.root(), ...ceremony.rootKeys).toJSON() },
        operator.token,
      );
      assert.equal(res.status, 403, res.text);
    });

    it('accepts the first root and director root signed at their threshold, and serves them', async () => {
      const root = signedBy(ceremony.root(), ...ceremony.rootKeys);
      writeFileSync(join(work, '1.root.json'), JSON.stringify(root.toJSON()));
      const res = await post('/api/v1/updates/repository/root', { root: root.toJSON(), directorRoot: ceremony.directorRoot().toJSON() });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.ready, false, 'no targets yet');
      assert.equal(res.body.directorRoot.version, 1);
      const served = await t.client().get(`${tufMetadataPath(org)}1.root.json`);
      assert.equal(served.status, 200);
      assert.match(String(served.headers['content-type']), /application\/json/);
      assert.deepEqual(served.body, root.toJSON());
      assert.equal((await t.platform.updates.repository.directorRoot(org))?.signed !== undefined, true);
      const audit = await t.platform.db
        .selectFrom('audit_log')
        .select(['action', 'outcome'])
        .where('action', '=', 'update.root_accepted')
        .execute();
      assert.ok(audit.some((a) => a.outcome === 'success') && audit.some((a) => a.outcome === 'denied'));
    });

    it("refuses a director root that names another director key or other root keys than the image root's", async () => {
      const otherDirector = new TestCeremony({ ...ceremony.online, director: keyHolder().key }, t.clock.now());
      Object.assign(otherDirector.rootKeys, ceremony.rootKeys);
      let res = await post('/api/v1/updates/repository/root', { directorRoot: otherDirector.directorRoot(2).toJSON() });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error.code, 'update.online_key_mismatch');
      const otherRoots = new TestCeremony(ceremony.online, t.clock.now());
      res = await post('/api/v1/updates/repository/root', { directorRoot: otherRoots.directorRoot(2).toJSON() });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'update.metadata_rejected');
      res = await post('/api/v1/updates/repository/root', { directorRoot: ceremony.directorRoot(2).toJSON() });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.directorRoot.version, 2);
    });

    it('refuses top-level targets signed by a key the root does not name for targets', async () => {
      const res = await post('/api/v1/updates/repository/targets', ceremony.targets([product], null, 1, keyHolder()).toJSON());
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');
    });

    it('accepts top-level targets delegating each product line, and signs snapshot and timestamp', async () => {
      topLevel = ceremony.targets([product]);
      let res = await post('/api/v1/updates/repository/targets', topLevel.toJSON());
      assert.equal(res.status, 200, res.text);
      // The gateway line needs two release keys.
      const withGateway = ceremony.targets([gateway], topLevel, 2);
      res = await post('/api/v1/updates/repository/targets', withGateway.toJSON());
      assert.equal(res.status, 200, res.text);
      topLevel = withGateway;
      assert.equal(res.body.ready, true);
      assert.deepEqual(res.body.roles.map((r: { role: string }) => r.role).sort(), ['root', 'snapshot', 'targets', 'timestamp']);
      const timestamp = await t.client().get(`${tufMetadataPath(org)}timestamp.json`);
      assert.equal(timestamp.status, 200);
      assert.equal(timestamp.headers['cache-control'], 'no-store');
    });

    it('refuses top-level targets whose version does not increase', async () => {
      const res = await post('/api/v1/updates/repository/targets', signedBy(ceremony.targets([product]), ceremony.targetsKey).toJSON());
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'version');
    });

    it('refuses a release whose image was not uploaded, pointing at the blob route', async () => {
      const res = await release('1.0.0', ceremony.image(null, { productId: product, version: '1.0.0', length: image.length, sha256 }));
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error.code, 'update.image_missing');
      assert.match(res.body.error.message, new RegExp(`/api/v1/updates/blobs/${sha256}`));
    });

    it('publishes a release whose metadata the product line signed and whose image is uploaded', async () => {
      await t.platform.updates.blobs.put(Readable.from(image), { sha256, length: image.length });
      productMetadata = ceremony.image(null, {
        productId: product,
        version: '1.0.0',
        length: image.length,
        sha256,
        securityVersion: 2,
        hardwareIds: ['hw-rev-a', 'hw-rev-b'],
      });
      const res = await release('1.0.0', productMetadata);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.targetName, targetNameOf(product, '1.0.0'));
      assert.deepEqual(res.body.hardwareIds, ['hw-rev-a', 'hw-rev-b']);
      assert.equal(res.body.securityVersion, 2);
      const fetched = await t.client().get(`/api/v1/updates/releases/${res.body.id}`, { token });
      assert.equal(fetched.status, 200);
      const listed = await t.client().get(`/api/v1/updates/releases?productId=${product}`, { token });
      assert.deepEqual(
        listed.body.releases.map((r: { version: string }) => r.version),
        ['1.0.0'],
      );
    });

    it('lets tuf-js, starting from the first root only, find and download the image', async () => {
      const updater = client('device-1');
      await updater.refresh();
      const info = await updater.getTargetInfo(targetNameOf(product, '1.0.0'));
      assert.ok(info, 'target found');
      assert.deepEqual(info.custom, { product, version: '1.0.0', securityVersion: 2, hardwareIds: ['hw-rev-a', 'hw-rev-b'] });
      const path = await updater.downloadTarget(info);
      assert.deepEqual(readFileSync(path), image);
    });

    it('refuses a release whose metadata is signed by a key the delegation does not name', async () => {
      const res = await release(
        '1.1.0',
        ceremony.image(productMetadata, { productId: product, version: '1.1.0', length: image.length, sha256 }, keyHolder()),
      );
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');
    });

    it('refuses a release whose metadata is signed by the online snapshot key alone', async () => {
      const next = ceremony.image(productMetadata, { productId: product, version: '1.1.0', length: image.length, sha256 }, keyHolder());
      next.signatures = {};
      next.sign(onlineSigner(await t.platform.signingKeys.current(`tuf-snapshot:${org}`)));
      const res = await release('1.1.0', next);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');
    });

    it('refuses a release signed by fewer release keys than the product line threshold', async () => {
      const res = await release(
        '1.0.0',
        ceremony.image(null, { productId: gateway, version: '1.0.0', length: image.length, sha256 }, ceremony.releaseKeys[0]!),
        gateway,
      );
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');
      const both = await release(
        '1.0.0',
        ceremony.image(null, { productId: gateway, version: '1.0.0', length: image.length, sha256 }, ...ceremony.releaseKeys),
        gateway,
      );
      assert.equal(both.status, 201, both.text);
    });

    it("refuses a release whose metadata lists a target outside the product line's delegated path", async () => {
      const next = ceremony.image(productMetadata, { productId: product, version: '1.1.0', length: image.length, sha256 });
      const stray = ceremony.image(null, { productId: gateway, version: '9.9.9', length: image.length, sha256 });
      next.signed.targets[targetNameOf(gateway, '9.9.9')] = stray.signed.targets[targetNameOf(gateway, '9.9.9')]!;
      next.signatures = {};
      signedBy(next, ceremony.releaseKeys[0]!);
      const res = await release('1.1.0', next);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'path');
    });

    it('refuses a release whose product metadata version does not increase, and keeps nothing of it', async () => {
      const before = await t.client().get('/api/v1/updates/repository', { token });
      const stale = ceremony.image(null, { productId: product, version: '1.1.0', length: image.length, sha256 });
      const res = await release('1.1.0', stale);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'version');
      const afterwards = await t.client().get('/api/v1/updates/repository', { token });
      assert.deepEqual(afterwards.body, before.body);
      const listed = await t.client().get(`/api/v1/updates/releases?productId=${product}`, { token });
      assert.equal(listed.body.releases.length, 1);
    });

    it('refuses a root rotation signed only by the new root keys', async () => {
      const newKeys = [keyHolder(), keyHolder()];
      const res = await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(2, newKeys), ...newKeys).toJSON() });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');
      assert.match(res.body.error.message, /previous root/);
    });

    it('refuses a root that skips a version', async () => {
      const res = await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(3), ...ceremony.rootKeys).toJSON() });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'version');
    });

    it('rotates the root to a new targets key: the old key is refused, tuf-js follows the new root', async () => {
      const oldTargetsKey = ceremony.targetsKey;
      const newTargetsKey = keyHolder();
      const rotated = signedBy(ceremony.root(2, ceremony.rootKeys, newTargetsKey), ...ceremony.rootKeys);
      // A device's probe for the next root is answered from what the server keeps of the latest root...
      assert.equal((await t.client().get(`${tufMetadataPath(org)}2.root.json`)).status, 404);
      let res = await post('/api/v1/updates/repository/root', { root: rotated.toJSON() });
      assert.equal(res.status, 200, res.text);
      // ...which the upload replaced: the next probe finds the new root at once, and root.json is it.
      const probed = await t.client().get(`${tufMetadataPath(org)}2.root.json`);
      assert.equal(probed.status, 200, probed.text);
      assert.deepEqual(probed.body, rotated.toJSON());
      assert.deepEqual((await t.client().get(`${tufMetadataPath(org)}root.json`)).body, rotated.toJSON());
      ceremony.targetsKey = newTargetsKey;

      const byOldKey = ceremony.targets([product], topLevel, 1, oldTargetsKey);
      res = await post('/api/v1/updates/repository/targets', byOldKey.toJSON());
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.details.reason, 'signature');

      topLevel = ceremony.targets([product], topLevel);
      res = await post('/api/v1/updates/repository/targets', topLevel.toJSON());
      assert.equal(res.status, 200, res.text);

      for (const name of ['device-1', 'device-2']) {
        const updater = client(name);
        await updater.refresh();
        assert.ok(await updater.getTargetInfo(targetNameOf(product, '1.0.0')), `${name} finds the target`);
        const trusted = JSON.parse(readFileSync(join(work, name, 'root.json'), 'utf8'));
        assert.equal(trusted.signed.version, 2, `${name} now trusts root 2`);
      }
    });

    it('tuf-js refuses top-level targets signed by the revoked key even when the server holds and snapshots them', async () => {
      // An attacker with the database and the online keys: stores old-key targets and re-signs snapshot and timestamp.
      const forged = ceremony.targets([product], topLevel, 1, keyHolder());
      const version = forged.signed.version;
      await t.platform.db
        .insertInto('tuf_metadata')
        .values({
          organization_id: org,
          role: 'targets',
          version,
          json: JSON.stringify(forged.toJSON()),
          expires_at: Date.parse(forged.signed.expires),
          created_at: t.clock.now(),
        })
        .execute();
      await t.platform.db.transaction().execute((trx) => t.platform.updates.repository.signOnline(trx, org, t.clock.now(), true));
      await assert.rejects(client('device-3').refresh(), /Unable to load targets.*signed by 0\/1 keys/);
      await t.platform.db
        .deleteFrom('tuf_metadata')
        .where('organization_id', '=', org)
        .where('role', '=', 'targets')
        .where('version', '=', version)
        .execute();
    });

    it('tuf-js refuses an expired timestamp', async () => {
      t.clock.set(Date.now() - 2 * 86_400_000);
      await t.platform.db.transaction().execute((trx) => t.platform.updates.repository.signOnline(trx, org, t.clock.now(), true));
      t.clock.set(Date.now());
      await assert.rejects(client('device-4').refresh(), ExpiredMetadataError);
    });

    it('re-signs the timestamp once half its lifetime has passed, and not before', async () => {
      const latest = async () =>
        Number(
          (
            await t.platform.db
              .selectFrom('tuf_metadata')
              .select((eb) => eb.fn.max('version').as('v'))
              .where('organization_id', '=', org)
              .where('role', '=', 'timestamp')
              .executeTakeFirstOrThrow()
          ).v,
        );
      const served = async () => (await t.client().get(`${tufMetadataPath(org)}timestamp.json`)).body.signed.version as number;
      await t.platform.db.transaction().execute((trx) => t.platform.updates.repository.signOnline(trx, org, t.clock.now(), true));
      const start = await latest();
      assert.equal(await served(), start);
      await t.platform.updates.repository.refresh();
      assert.equal(await latest(), start, 'fresh: nothing to do');
      t.clock.advance(t.config.updates.timestampExpirySeconds * 500 + 1000);
      await t.platform.updates.repository.refresh();
      assert.equal(await latest(), start + 1);
      // Served at once, though the one before was served a moment ago (the server keeps the latest for a second).
      assert.equal(await served(), start + 1);
      t.clock.set(Date.now());
    });

    it("serves nothing for unknown files or another organization's repository", async () => {
      for (const path of [
        `${tufMetadataPath(org)}1.director-root.json`,
        `${tufMetadataPath(org)}../1.root.json`,
        `${tufMetadataPath(org)}99.root.json`,
        `${tufMetadataPath('not-an-org')}1.root.json`,
      ]) {
        const res = await t.client().get(path);
        assert.equal(res.status, 404, path);
      }
    });
  });
}
