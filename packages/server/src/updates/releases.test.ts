import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Metadata, Targets } from '@tufjs/models';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { onlineKeysFromJson } from './tuf/offline.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] };
const ORG_B = 'releases-b';

for (const engine of ENGINES) {
  describe(`firmware releases [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let tokenB: string;
    let product: string;
    let productB: string;
    let ceremony: TestCeremony;
    let current: Metadata<Targets> | null = null;
    let releaseId: string;
    const image = randomBytes(5000);
    const sha256 = createHash('sha256').update(image).digest('hex');

    const post = (path: string, body: unknown, as = token) => t.client().post(path, body, { token: as });
    const create = (version: string, metadata: Metadata<Targets>, extra: Record<string, unknown> = {}, as = token) =>
      post(
        '/api/v1/updates/releases',
        { productId: product, version, notes: 'notes', sbom: SBOM, metadata: metadata.toJSON(), ...extra },
        as,
      );
    const signedImage = (version: string, overrides: { length?: number; version?: string; hardwareIds?: string[] } = {}) =>
      ceremony.image(current, {
        productId: product,
        version: overrides.version ?? version,
        length: overrides.length ?? image.length,
        sha256,
        ...(overrides.hardwareIds ? { hardwareIds: overrides.hardwareIds } : {}),
      });

    before(async () => {
      t = await startTestPlatform(engine);
      const org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      token = (await ownerSession(t)).token;
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      productB = await testProduct(t.platform, await organizationIdOf(t.platform, ORG_B), 'B sensor');
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      const keys = await t.client().get('/api/v1/updates/repository/online-keys', { token });
      ceremony = new TestCeremony(onlineKeysFromJson(keys.body), t.clock.now());
      const root = await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(), ...ceremony.rootKeys).toJSON() });
      assert.equal(root.status, 200, root.text);
      const targets = await post('/api/v1/updates/repository/targets', ceremony.targets([product]).toJSON());
      assert.equal(targets.status, 200, targets.text);
      await t.platform.updates.blobs.put(Readable.from(image), { sha256, length: image.length });
    });
    after(() => t?.close());

    it('refuses a version that is not a semantic version', async () => {
      const res = await create('v1.0', signedImage('v1.0'));
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'request.invalid');
    });

    it('refuses an invalid SBOM', async () => {
      const res = await create('1.0.0', signedImage('1.0.0'), { sbom: { bomFormat: 'SPDX' } });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'update.sbom_invalid');
    });

    it('refuses a release whose signed target names another version', async () => {
      const res = await create('1.0.0', signedImage('1.0.0', { version: '1.0.1' }));
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'update.release_invalid');
    });

    it('refuses an image whose uploaded length differs from the signed length', async () => {
      const res = await create('1.0.0', signedImage('1.0.0', { length: image.length + 1 }));
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error.code, 'update.image_missing');
    });

    it('publishes a release and audits it', async () => {
      current = signedImage('1.0.0');
      const res = await create('1.0.0', current);
      assert.equal(res.status, 201, res.text);
      releaseId = res.body.id;
      const release = await t.platform.updates.releases.get(await organizationIdOf(t.platform, t.org), releaseId);
      assert.equal(release.sha256, sha256);
      assert.equal(release.length, image.length);
      const audit = await t.platform.db.selectFrom('audit_log').select(['action', 'outcome']).where('target_id', '=', releaseId).execute();
      assert.deepEqual(audit, [{ action: 'update.release_created', outcome: 'success' }]);
    });

    it('serves the SBOM it stored with the release, and not to another organization', async () => {
      const sbom = await t.client().get(`/api/v1/updates/releases/${releaseId}/sbom`, { token });
      assert.equal(sbom.status, 200, sbom.text);
      assert.deepEqual(sbom.body, SBOM);
      const foreign = await t.client().get(`/api/v1/updates/releases/${releaseId}/sbom`, { token: tokenB });
      assert.equal(foreign.status, 404, foreign.text);
    });

    it('refuses to reuse a version, even with newer signed metadata', async () => {
      const res = await create('1.0.0', signedImage('1.0.0'));
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error.code, 'update.release_exists');
    });

    it("answers 404 for another organization's release and product", async () => {
      const read = await t.client().get(`/api/v1/updates/releases/${releaseId}`, { token: tokenB });
      assert.equal(read.status, 404, read.text);
      const listed = await t.client().get(`/api/v1/updates/releases?productId=${product}`, { token: tokenB });
      assert.deepEqual(listed.body.releases, []);
      const res = await create('2.0.0', signedImage('2.0.0'), {}, tokenB);
      assert.equal(res.status, 404, res.text);
      const own = await create('2.0.0', signedImage('2.0.0'), { productId: productB });
      assert.equal(own.status, 404, own.text);
      await assert.rejects(t.platform.updates.releases.get(await organizationIdOf(t.platform, ORG_B), releaseId), {
        code: 'resource.not_found',
      });
    });

    it('publishes with an API key scoped to firmware:release alone, and refuses a key without it', async () => {
      const key = async (scopes: string[]) => {
        const res = await post('/api/v1/me/api-keys', { name: `release ${scopes.join(' ')}`, scopes, expiresInDays: 1 });
        assert.equal(res.status, 201, res.text);
        return res.body.secret as string;
      };
      const releaseOnly = await key(['firmware:release']);
      const readOnly = await key(['devices:read', 'firmware:read']);
      const next = signedImage('1.1.0');
      const refused = await create('1.1.0', next, {}, readOnly);
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.error.code, 'auth.forbidden');
      assert.equal(refused.body.error.details.permission, 'firmware:release');
      const published = await create('1.1.0', next, {}, releaseOnly);
      assert.equal(published.status, 201, published.text);
      current = next;
      const foreign = await create('1.2.0', signedImage('1.2.0'), { productId: productB }, releaseOnly);
      assert.equal(foreign.status, 404, "the narrow lookup is still scoped to the key's organization");
    });
  });
}
