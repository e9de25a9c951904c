/**
 * Release provenance and test gates over HTTPS on both engines: a product's release policy set by
 * an owner (not by a release engineer, whose key it gates), a release with provenance and passing
 * tests published with its source commit shown, and the attacks refused: no provenance, a forged
 * attestation, a builder or repository outside the policy, failed tests. A refused release is kept
 * with its reason, leaves the repository as it was, and cannot be rolled out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Metadata, Targets } from '@tufjs/models';
import { attestation, provenanceStatement, testResultStatement } from '../testing/attestations.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { keyIdOf } from './provenance.js';
import { signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { onlineKeysFromJson } from './tuf/offline.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] };
const BUILDER = 'https://github.com/actions/runner/github-hosted';
const REPO = 'https://github.com/acme/thermostat-fw';

for (const engine of ENGINES) {
  describe(`release provenance and test gates [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: string;
    let engineer: string;
    let product: string;
    let ceremony: TestCeremony;
    let current: Metadata<Targets> | null = null;
    const ci = generateKeyPairSync('ed25519');
    const forger = generateKeyPairSync('ed25519');

    /** An uploaded image and the product line's next metadata naming it. */
    async function image(version: string) {
      const bytes = randomBytes(2000);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await t.platform.updates.blobs.put(Readable.from(bytes), { sha256, length: bytes.length });
      return { sha256, metadata: ceremony.image(current, { productId: product, version, length: bytes.length, sha256 }) };
    }
    const publish = (version: string, metadata: Metadata<Targets>, attestations: unknown[]) =>
      t
        .client()
        .post(
          '/api/v1/updates/releases',
          { productId: product, version, notes: '', sbom: SBOM, metadata: metadata.toJSON(), attestations },
          { token: engineer },
        );
    const good = (sha256: string) => [
      attestation(
        provenanceStatement(sha256, { builder: BUILDER, repository: `git+${REPO}@refs/heads/main`, commit: 'c'.repeat(40) }),
        ci.privateKey,
      ),
      attestation(testResultStatement(sha256, 'PASSED'), ci.privateKey),
    ];

    before(async () => {
      t = await startTestPlatform(engine);
      const org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      owner = (await ownerSession(t)).token;
      engineer = await signIn(t, await createOperator(t, 'release@example.com', 'release_engineer'));
      const keys = await t.client().get('/api/v1/updates/repository/online-keys', { token: owner });
      ceremony = new TestCeremony(onlineKeysFromJson(keys.body), t.clock.now());
      const post = (path: string, body: unknown) => t.client().post(path, body, { token: owner });
      assert.equal(
        (await post('/api/v1/updates/repository/root', { root: signedBy(ceremony.root(), ...ceremony.rootKeys).toJSON() })).status,
        200,
      );
      assert.equal((await post('/api/v1/updates/repository/targets', ceremony.targets([product]).toJSON())).status, 200);
    });
    after(() => t?.close());

    it('lets an owner set the policy, and not the release engineer it gates', async () => {
      const policy = {
        attestationKeys: [{ keyid: keyIdOf(ci.publicKey), publicKey: ci.publicKey.export({ type: 'spki', format: 'pem' }).toString() }],
        builders: [BUILDER],
        repositories: [REPO],
        requireProvenance: true,
        requireTests: true,
      };
      const path = `/api/v1/updates/products/${product}/release-policy`;
      const weakened = await t.client().request('PUT', path, { body: { requireProvenance: false }, token: engineer });
      assert.equal(weakened.status, 403, weakened.text);
      const set = await t.client().request('PUT', path, { body: policy, token: owner });
      assert.equal(set.status, 200, set.text);
      assert.equal((await t.client().get(path, { token: engineer })).body.policy.requireTests, true);
      const forgedId = { ...policy, attestationKeys: [{ ...policy.attestationKeys[0]!, keyid: 'a'.repeat(64) }] };
      const bad = await t.client().request('PUT', path, { body: forgedId, token: owner });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'update.release_policy_invalid');
      const audited = await t.platform.audit.query({
        organizationId: await organizationIdOf(t.platform, t.org),
        action: 'update.release_policy_set',
      });
      assert.equal(audited.entries.length, 1);
    });

    it('refuses releases without provenance, with forged or foreign attestations, from another builder or repository, or with failed tests', async () => {
      const { sha256, metadata } = await image('1.0.0');
      const provenance = (overrides: Parameters<typeof provenanceStatement>[1], key = ci.privateKey) =>
        attestation(provenanceStatement(sha256, { builder: BUILDER, repository: `git+${REPO}@refs/heads/main`, ...overrides }), key);
      const tests = attestation(testResultStatement(sha256, 'PASSED'), ci.privateKey);
      const cases: [string, unknown[], string][] = [
        ['no attestation', [], 'update.provenance_missing'],
        ['tests only', [tests], 'update.provenance_missing'],
        ['signed by a key the policy does not trust', [provenance({}, forger.privateKey), tests], 'update.attestation_untrusted'],
        ['built elsewhere', [provenance({ builder: 'https://ci.mallory.example/runner' }), tests], 'update.provenance_builder'],
        [
          'from a fork',
          [provenance({ repository: 'git+https://github.com/mallory/thermostat-fw@refs/heads/main' }), tests],
          'update.provenance_source',
        ],
        ['about another image', [provenance({ subject: 'e'.repeat(64) }), tests], 'update.attestation_subject_mismatch'],
        ['failing tests', [provenance({}), attestation(testResultStatement(sha256, 'FAILED'), ci.privateKey)], 'update.tests_failed'],
      ];
      for (const [what, attestations, code] of cases) {
        const res = await publish('1.0.0', metadata, attestations);
        assert.equal(res.status, 422, `${what}: ${res.text}`);
        assert.equal(res.body.error.code, code, what);
        assert.ok(res.body.error.details.refusalId, `${what}: the refusal is kept`);
      }
      const refusals = await t.client().get(`/api/v1/updates/release-refusals?productId=${product}`, { token: engineer });
      assert.equal(refusals.body.refusals.length, cases.length);
      assert.deepEqual(refusals.body.refusals.map((r: { code: string }) => r.code).sort(), cases.map((c) => c[2]).sort());
      assert.deepEqual(
        (await t.client().get(`/api/v1/updates/releases?productId=${product}`, { token: engineer })).body.releases,
        [],
        'nothing was published',
      );

      const refusalId = refusals.body.refusals[0].id as string;
      const rollout = await t
        .client()
        .post('/api/v1/updates/rollouts', { releaseId: refusalId, selector: { groups: ['all'] } }, { token: engineer });
      assert.equal(rollout.status, 409, rollout.text);
      assert.equal(rollout.body.error.code, 'update.release_refused');
    });

    it('publishes a release whose provenance and tests pass, showing the source commit and the test evidence', async () => {
      const { sha256, metadata } = await image('1.0.0');
      const res = await publish('1.0.0', metadata, good(sha256));
      assert.equal(res.status, 201, res.text);
      current = metadata;
      assert.deepEqual(res.body.provenance, {
        builder: BUILDER,
        repository: REPO,
        commit: 'c'.repeat(40),
        tests: {
          result: 'PASSED',
          passed: 2,
          warned: 0,
          configuration: ['https://github.com/acme/thermostat-fw/.github/workflows/test.yml'],
        },
        signedBy: [keyIdOf(ci.publicKey)],
      });
      const read = await t.client().get(`/api/v1/updates/releases/${res.body.id}`, { token: engineer });
      assert.equal(read.body.provenance.commit, 'c'.repeat(40));
    });
  });
}
