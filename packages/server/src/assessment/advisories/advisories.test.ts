/**
 * Advisories end to end on a real platform, on both engines: OSV records imported through the API
 * are matched against the releases' SBOMs; the devices running the affected release, and only
 * they, are in the finding; a remediation rollout moves them to the fixed release (devices report
 * success as an agent would) and the exposure drops to zero.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cliActor } from '../../accounts/roles.js';
import { ENGINES } from '../../testing/engines.js';
import { organizationIdOf } from '../../testing/devices.js';
import { createOperator, signIn } from '../../testing/accounts.js';
import {
  hardwareProduct,
  identityOf,
  insertRelease,
  registerDevices,
  statusPayload,
  type TestRelease,
} from '../../testing/rollout-fixtures.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';
import type { FindingView } from '../model.js';

const DAY = 86_400_000;
const ORG_B = 'advisories-b';

const sbomWith = (...components: [string, string][]) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.5',
  version: 1,
  components: components.map(([name, version]) => ({ type: 'library', name, version, purl: `pkg:npm/${name}@${version}` })),
});

/** A critical advisory (CVSS 9.8) on the npm package `left-pad-ng` before 2.4.1. */
const ADVISORY = {
  schema_version: '1.6.0',
  id: 'GHSA-test-0001-0001',
  modified: '2026-11-01T00:00:00Z',
  aliases: ['CVE-2026-0001'],
  summary: 'Prototype pollution in left-pad-ng',
  severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
  affected: [
    {
      package: { ecosystem: 'npm', name: 'left-pad-ng' },
      ranges: [{ type: 'SEMVER', events: [{ introduced: '2.0.0' }, { fixed: '2.4.1' }] }],
    },
  ],
};
/** Affects a package no release ships. */
const UNRELATED = {
  id: 'OSV-2026-0002',
  modified: '2026-11-02T00:00:00Z',
  database_specific: { severity: 'LOW' },
  affected: [{ package: { ecosystem: 'PyPI', name: 'nothing-here' }, versions: ['1.0'] }],
};

for (const engine of ENGINES) {
  describe(`advisories [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let token: string;
    let product: string;
    let otherProduct: string;
    let vulnerable: TestRelease;
    let fixed: TestRelease;
    let exposed: string[];
    let safe: string[];
    let otherProductDevices: string[];

    const run = () => t.platform.assessment.service.run(cliActor(org, 'test'), 'cli');
    async function finding(subject: string): Promise<FindingView | undefined> {
      const { findings } = await t.platform.assessment.service.list(cliActor(org, 'test'), {
        check: 'firmware-known-vulnerability',
        limit: 200,
      });
      return findings.find((f) => f.subject === subject);
    }

    before(async () => {
      t = await startTestPlatform(engine, { assessment: { intervalMinutes: 0 } });
      org = await organizationIdOf(t.platform, t.org);
      token = (await ownerSession(t)).token;
      product = await hardwareProduct(t.platform, org, 'Advisory sensor');
      otherProduct = await hardwareProduct(t.platform, org, 'Other sensor');
      await insertRelease(t.platform, org, product, '1.0.0', ['hw-a'], undefined, sbomWith(['left-pad-ng', '1.9.0'], ['kysely', '0.28.0']));
      vulnerable = await insertRelease(t.platform, org, product, '1.1.0', ['hw-a'], undefined, sbomWith(['left-pad-ng', '2.3.0']));
      fixed = await insertRelease(t.platform, org, product, '1.2.0', ['hw-a'], undefined, sbomWith(['left-pad-ng', '2.4.1']));
      // The other product's 1.1.0 ships no vulnerable component: its devices on "1.1.0" are not exposed.
      await insertRelease(t.platform, org, otherProduct, '1.1.0', ['hw-a'], undefined, sbomWith(['kysely', '0.28.0']));
      exposed = await registerDevices(t.platform, org, product, 'ADV-X', 3);
      safe = await registerDevices(t.platform, org, product, 'ADV-S', 2);
      otherProductDevices = await registerDevices(t.platform, org, otherProduct, 'ADV-O', 2);
      await t.platform.db
        .updateTable('devices')
        .set({ firmware_version: '1.1.0' })
        .where('id', 'in', [...exposed, ...otherProductDevices])
        .execute();
      await t.platform.db.updateTable('devices').set({ firmware_version: '1.0.0' }).where('id', 'in', safe).execute();
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
    });
    after(() => t?.close());

    it('imports OSV records through the API, audited, and refuses a malformed one whole', async () => {
      const client = t.client();
      const bad = await client.post(
        '/api/v1/assessment/advisories',
        { records: [UNRELATED, { ...ADVISORY, modified: 'soon' }] },
        { token },
      );
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.error.code, 'advisory.invalid');
      assert.match(bad.body.error.message, /records\[1\]\.modified/);
      const imported = await client.post('/api/v1/assessment/advisories', { records: [ADVISORY, UNRELATED] }, { token });
      assert.equal(imported.status, 200, imported.text);
      assert.deepEqual(imported.body, { added: [ADVISORY.id, UNRELATED.id], updated: [], unchanged: [] });
      const again = await client.post('/api/v1/assessment/advisories', { records: [ADVISORY] }, { token });
      assert.deepEqual(again.body.unchanged, [ADVISORY.id]);
      const audited = await t.platform.audit.query({ organizationId: org, action: 'assessment.advisories_imported', limit: 5 });
      assert.equal(audited.entries.length, 2);
    });

    it('lets an operator read advisories but not import them or start a remediation', async () => {
      const operator = await signIn(t, await createOperator(t, 'operator-adv@example.com', 'operator'));
      const client = t.client();
      const imported = await client.post('/api/v1/assessment/advisories', { records: [UNRELATED] }, { token: operator });
      assert.equal(imported.status, 403, imported.text);
      assert.equal(imported.body.error.details.permission, 'org:manage');
      const remediation = await client.post(
        `/api/v1/assessment/advisories/${ADVISORY.id}/remediation`,
        { releaseId: fixed.id },
        { token: operator },
      );
      assert.equal(remediation.status, 403, remediation.text);
      const listed = await client.get('/api/v1/assessment/advisories', { token: operator });
      assert.equal(listed.status, 200, listed.text);
      assert.ok((listed.body.advisories as { id: string }[]).some((a) => a.id === ADVISORY.id));
    });

    it('refuses an advisory URL on a private or loopback address, and a plain http URL', async () => {
      const client = t.client();
      for (const url of [
        'https://127.0.0.1/osv.json',
        'https://10.1.2.3/osv.json',
        'https://[::1]/osv.json',
        'https://localhost/osv.json',
      ]) {
        const res = await client.post('/api/v1/assessment/advisories', { url }, { token });
        assert.equal(res.status, 400, `${url}: ${res.text}`);
        assert.equal(res.body.error.code, 'advisory.source_refused');
      }
      const plain = await client.post('/api/v1/assessment/advisories', { url: 'http://example.com/osv.json' }, { token });
      assert.equal(plain.status, 400, plain.text);
      assert.equal(plain.body.error.code, 'advisory.source_refused');
    });

    it('imports from a mirror inside the network once allowed, and follows no redirect', async () => {
      const mirror = createServer((request, response) => {
        if (request.url === '/moved') {
          response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
          return;
        }
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ vulns: [{ ...UNRELATED, id: 'OSV-MIRROR-1' }] }));
      });
      await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
      const base = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
      const config = t.platform.config.assessment;
      config.advisoryPrivateAddresses = true;
      try {
        const client = t.client();
        const imported = await client.post('/api/v1/assessment/advisories', { url: `${base}/osv.json` }, { token });
        assert.equal(imported.status, 200, imported.text);
        assert.deepEqual(imported.body.added, ['OSV-MIRROR-1']);
        const moved = await client.post('/api/v1/assessment/advisories', { url: `${base}/moved` }, { token });
        assert.equal(moved.status, 502, moved.text);
        assert.equal(moved.body.error.code, 'advisory.fetch_failed');
      } finally {
        config.advisoryPrivateAddresses = false;
        mirror.close();
      }
    });

    it('marks the release whose SBOM has the vulnerable component, and counts only the devices of that product running it', async () => {
      const res = await t.client().get('/api/v1/assessment/advisories', { token });
      assert.equal(res.status, 200, res.text);
      const advisory = (res.body.advisories as { id: string }[]).find((a) => a.id === ADVISORY.id) as Record<string, unknown>;
      assert.equal(advisory.severity, 'critical');
      assert.equal(advisory.severitySource, 'CVSS_V3 9.8');
      assert.deepEqual(advisory.affectedReleases, [
        {
          releaseId: vulnerable.id,
          productId: product,
          version: '1.1.0',
          components: [{ name: 'left-pad-ng', purl: 'pkg:npm/left-pad-ng@2.3.0', version: '2.3.0' }],
          devices: 3,
        },
      ]);
      assert.equal(advisory.devices, 3);
      const unrelated = (res.body.advisories as { id: string; devices: number; affectedReleases: unknown[] }[]).find(
        (a) => a.id === UNRELATED.id,
      )!;
      assert.deepEqual([unrelated.devices, unrelated.affectedReleases], [0, []]);
      const one = await t.client().get(`/api/v1/assessment/advisories/${ADVISORY.id}`, { token });
      assert.equal(one.status, 200, one.text);
      assert.deepEqual(one.body.record.aliases, ['CVE-2026-0001']);
      // Another organization sees none of it.
      const tokenB = await signIn(t, await createOperator(t, 'owner-adv-b@example.com', 'owner', ORG_B));
      const foreign = await t.client().get(`/api/v1/assessment/advisories/${ADVISORY.id}`, { token: tokenB });
      assert.equal(foreign.status, 404, foreign.text);
      assert.equal(foreign.body.error.code, 'resource.not_found');
    });

    it('raises a finding with the advisory, its severity, the evidence and exactly the exposed devices', async () => {
      await run();
      const open = await finding(ADVISORY.id);
      assert.ok(open, 'no firmware-known-vulnerability finding');
      assert.equal(open.state, 'open');
      assert.equal(open.severity, 'critical');
      assert.equal(open.evidence.advisory, ADVISORY.id);
      assert.deepEqual(open.evidence.aliases, ['CVE-2026-0001']);
      assert.equal(open.evidence.devices, 3);
      const devices = open.resources.filter((r) => r.type === 'device').map((r) => r.id);
      assert.deepEqual(devices.sort(), [...exposed].sort());
      for (const id of [...safe, ...otherProductDevices]) assert.ok(!devices.includes(id), `${id} is not running an affected release`);
      assert.deepEqual(
        open.resources.filter((r) => r.type === 'firmware_release'),
        [{ type: 'firmware_release', id: vulnerable.id }],
      );
      assert.equal(await finding(UNRELATED.id), undefined, 'an advisory no device is exposed to raises nothing');
    });

    it('refuses a remediation to a release the advisory affects, or of another product', async () => {
      const client = t.client();
      const itself = await client.post(`/api/v1/assessment/advisories/${ADVISORY.id}/remediation`, { releaseId: vulnerable.id }, { token });
      assert.equal(itself.status, 409, itself.text);
      assert.equal(itself.body.error.code, 'advisory.remediation_invalid');
      const other = (await t.platform.updates.releases.list(cliActor(org, 'test'), { productId: otherProduct }))[0]!;
      const wrong = await client.post(`/api/v1/assessment/advisories/${ADVISORY.id}/remediation`, { releaseId: other.id }, { token });
      assert.equal(wrong.status, 409, wrong.text);
      const missing = await client.post('/api/v1/assessment/advisories/GHSA-none/remediation', { releaseId: fixed.id }, { token });
      assert.equal(missing.status, 404, missing.text);
    });

    it('remediates: the rollout moves the exposed devices to the fixed release, the finding resolves and the exposure drops to zero', async () => {
      const started = await t
        .client()
        .post(
          `/api/v1/assessment/advisories/${ADVISORY.id}/remediation`,
          { releaseId: fixed.id, phases: [{ percent: 100, soakSeconds: 0 }] },
          { token },
        );
      assert.equal(started.status, 201, started.text);
      assert.equal(started.body.enrolled, 3);
      assert.deepEqual(started.body.affectedVersions, ['1.1.0']);
      const rolloutId = started.body.rolloutId as string;
      const rollouts = t.platform.updates.rollouts;
      const enrolled = (await rollouts.devicesOf(cliActor(org, 'test'), rolloutId, { limit: 500 })).devices.map((d) => d.deviceId);
      assert.deepEqual(enrolled.sort(), [...exposed].sort(), 'only the devices running the affected release are enrolled');
      const audited = await t.platform.audit.query({ organizationId: org, action: 'assessment.remediation_started', limit: 1 });
      assert.equal(audited.entries[0]?.details.rolloutId, rolloutId);

      // A key outlives the session across the day the clock moves.
      const key = await t
        .client()
        .post('/api/v1/me/api-keys', { name: 'charts', scopes: ['assessment:read'], expiresInDays: 30 }, { token });
      assert.equal(key.status, 201, key.text);
      // The next day: the devices take the update as an agent reports it.
      t.clock.advance(DAY);
      await rollouts.tick();
      for (const deviceId of exposed)
        for (const state of ['downloading', 'installing', 'succeeded'] as const)
          await rollouts.deviceMessage(identityOf(org, deviceId, product), 'status', statusPayload(rolloutId, state, fixed.targetName));
      for (const deviceId of exposed)
        assert.equal((await t.platform.devices.service.get(cliActor(org, 'test'), deviceId)).firmwareVersion, '1.2.0');

      await run();
      const resolved = await finding(ADVISORY.id);
      assert.equal(resolved?.state, 'resolved', JSON.stringify(resolved?.evidence));
      const exposure = await t.client().get(`/api/v1/assessment/exposure?advisoryId=${ADVISORY.id}&days=7`, { token: key.body.secret });
      assert.equal(exposure.status, 200, exposure.text);
      const series = exposure.body.series as { day: string; devices: number; releases: number }[];
      assert.equal(series.length, 2, JSON.stringify(series));
      assert.deepEqual(
        series.map((p) => p.devices),
        [3, 0],
      );
      assert.ok(series[0]!.day < series[1]!.day);
      assert.equal(series[1]!.releases, 1, 'the release is still affected; no device runs it');
    });
  });
}
