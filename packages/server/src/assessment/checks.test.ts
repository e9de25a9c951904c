/**
 * Each audit check on a real platform, on both engines: the bad condition is created, a run
 * opens the finding with its evidence, the condition is fixed, the next run resolves it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { cliActor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { makeCsr, organizationIdOf, provisionTestDevice, testProduct } from '../testing/devices.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { opensslCa } from '../testing/est-client.js';
import { Openssl } from '../testing/openssl.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import type { FindingView } from './model.js';

const DAY = 86_400_000;

for (const engine of ENGINES) {
  describe(`audit checks [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let orgId: string;
    let productId: string;
    let ownerToken: string;

    const run = () => t.platform.assessment.service.run(cliActor(orgId, 'test'), 'cli');
    async function finding(check: string, subject = ''): Promise<FindingView | undefined> {
      const { findings } = await t.platform.assessment.service.list(cliActor(orgId, 'test'), { check, limit: 200 });
      return findings.find((f) => f.subject === subject);
    }
    async function openFinding(check: string, subject = ''): Promise<FindingView> {
      await run();
      const found = await finding(check, subject);
      assert.ok(found, `no ${check} finding`);
      assert.equal(found.state, 'open', `${check} is ${found.state}`);
      return found;
    }
    async function resolvedFinding(check: string, subject = ''): Promise<FindingView> {
      await run();
      const found = await finding(check, subject);
      assert.ok(found, `no ${check} finding`);
      assert.equal(found.state, 'resolved', `${check} is ${found.state}: ${JSON.stringify(found.evidence)}`);
      assert.ok(found.resolvedAt);
      return found;
    }

    before(async () => {
      t = await startTestPlatform(engine, { assessment: { intervalMinutes: 0 } });
      orgId = await organizationIdOf(t.platform, t.org);
      productId = await testProduct(t.platform, orgId);
      ownerToken = (await ownerSession(t)).token;
    });
    after(() => t?.close());

    it('finds a device certificate ending within the window, and resolves it once renewed', async () => {
      const device = await provisionTestDevice(t.platform, orgId, productId, 'EXP-1');
      const { csr } = await makeCsr(device.id);
      const short = await t.platform.pki.issueDeviceCertificate(
        { organizationId: orgId, deviceId: device.id, csrPem: csr, validityDays: 10 },
        { type: 'cli', id: 'test' },
      );
      const open = await openFinding('device-certificate-expiring');
      assert.equal(open.severity, 'medium');
      const certificates = open.evidence.certificates as { serial: string; deviceId: string }[];
      assert.deepEqual(
        certificates.map((c) => c.serial),
        [short.serial],
      );
      assert.deepEqual(open.resources, [
        { type: 'certificate', id: short.serial },
        { type: 'device', id: device.id },
      ]);
      // Renewal: the device holds its long-lived certificate; the short one is superseded.
      await t.platform.pki.revoke({ organizationId: orgId, serial: short.serial, reason: 'superseded' }, { type: 'cli', id: 'test' });
      const resolved = await resolvedFinding('device-certificate-expiring');
      assert.equal(resolved.firstSeenAt, open.firstSeenAt);
    });

    it('lists at most assessment.resourcesPerFinding resources and counts the rest', async () => {
      const { config } = t.platform;
      const saved = config.assessment.resourcesPerFinding;
      config.assessment.resourcesPerFinding = 2;
      const serials: string[] = [];
      try {
        for (const serial of ['BOUND-1', 'BOUND-2', 'BOUND-3']) {
          const device = await t.platform.devices.service.register(cliActor(orgId, 'test'), { serial, productId });
          const { csr } = await makeCsr(device.id);
          const cert = await t.platform.pki.issueDeviceCertificate(
            { organizationId: orgId, deviceId: device.id, csrPem: csr, validityDays: 3 },
            { type: 'cli', id: 'test' },
          );
          serials.push(cert.serial);
        }
        const open = await openFinding('device-certificate-expiring');
        assert.equal(open.resources.length, 2);
        assert.equal(open.moreResources, 4); // three certificates and their three devices, two listed
        assert.equal((open.evidence.certificates as unknown[]).length, 2);
      } finally {
        config.assessment.resourcesPerFinding = saved;
      }
      for (const serial of serials)
        await t.platform.pki.revoke({ organizationId: orgId, serial, reason: 'superseded' }, { type: 'cli', id: 'test' });
      await resolvedFinding('device-certificate-expiring');
    });

    it('finds a CA certificate ending within the window, and resolves it once the CA is gone', async () => {
      const ssl = new Openssl();
      const pem = await opensslCa(ssl, 'short-ca', '/CN=Factory CA short');
      // opensslCa makes a ten-year CA; re-make it for ten days.
      await ssl.must(['x509', '-in', 'short-ca.pem', '-signkey', 'short-ca.key', '-days', '10', '-out', 'short-ca-10d.pem']);
      const shortPem = ssl.read('short-ca-10d.pem');
      assert.notEqual(shortPem, pem);
      const actor = cliActor(orgId, 'test');
      // openssl dated the CA by the real clock; the platform's manual clock may lag it on a loaded machine.
      t.clock.set(Math.max(t.clock.now(), Date.now() + 1000));
      const ca = await t.platform.devices.bootstrapCas.register(actor, { name: 'Line 2', certificate: shortPem });
      const open = await openFinding('ca-certificate-expiring');
      assert.equal(open.severity, 'high');
      assert.deepEqual(open.resources, [{ type: 'bootstrap_ca', id: ca.id }]);
      assert.equal((open.evidence.certificates as { subject: string }[])[0]!.subject, 'Line 2');
      await t.platform.devices.bootstrapCas.delete(actor, ca.id);
      await resolvedFinding('ca-certificate-expiring');
    });

    it('finds a device connected on a revoked certificate, quarantines it as a mitigation, and resolves once it is gone', async () => {
      const device = await provisionTestDevice(t.platform, orgId, productId, 'REV-1');
      // The broker's record of the live session (what a node that missed the revocation would keep).
      await t.platform.db
        .insertInto('device_presence')
        .values({
          device_id: device.id,
          organization_id: orgId,
          connected_since: t.clock.now(),
          node_id: 'node-test',
          remote_address: '198.51.100.7',
          protocol: 'mqtt',
          changed_at: t.clock.now(),
        })
        .execute();
      const before = await run();
      assert.equal((await finding('revoked-certificate-connected'))?.state ?? 'none', 'none', `opened ${before.opened}`);
      await t.platform.pki.revoke(
        { organizationId: orgId, serial: device.certSerial, reason: 'keyCompromise' },
        { type: 'cli', id: 'test' },
      );
      const open = await openFinding('revoked-certificate-connected');
      assert.equal(open.severity, 'critical');
      const evidence = (open.evidence.devices as { deviceId: string; serial: string; remoteAddress: string }[])[0]!;
      assert.deepEqual([evidence.deviceId, evidence.serial, evidence.remoteAddress], [device.id, device.certSerial, '198.51.100.7']);

      const client = t.client();
      const acted = await client.post(`/api/v1/assessment/findings/${open.id}/actions`, { action: 'quarantine' }, { token: ownerToken });
      assert.equal(acted.status, 200, acted.text);
      assert.deepEqual(acted.body.results, [{ resource: { type: 'device', id: device.id }, outcome: 'done' }]);
      assert.equal((await t.platform.devices.service.get(cliActor(orgId, 'test'), device.id)).status, 'quarantined');
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'assessment.mitigation', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, open.id);
      assert.equal(audited.entries[0]?.details.action, 'quarantine');

      await t.platform.db.updateTable('device_presence').set({ connected_since: null }).where('device_id', '=', device.id).execute();
      await resolvedFinding('revoked-certificate-connected');
    });

    it('finds an admin without MFA, and resolves once they enrol', async () => {
      const admin = await createOperator(t, 'admin-nomfa@example.com', 'admin');
      const open = await openFinding('operator-without-mfa', 'privileged');
      assert.equal(open.severity, 'high');
      assert.deepEqual(open.resources, [{ type: 'user', id: admin.id }]);
      assert.equal((open.evidence.users as { email: string }[])[0]!.email, 'admin-nomfa@example.com');
      await signIn(t, admin); // the admin role must enrol at sign-in
      assert.ok(admin.secret);
      await resolvedFinding('operator-without-mfa', 'privileged');
    });

    it('finds an API key that administers the organization, and resolves once it is revoked', async () => {
      const client = t.client();
      const created = await client.post(
        '/api/v1/me/api-keys',
        { name: 'ci', scopes: ['devices:read', 'org:manage'], expiresInDays: 30 },
        { token: ownerToken },
      );
      assert.equal(created.status, 201, created.text);
      const keyId = created.body.apiKey.id as string;
      const open = await openFinding('api-key-wide-or-long-lived');
      assert.deepEqual(open.resources, [{ type: 'api_key', id: keyId }]);
      assert.deepEqual((open.evidence.keys as { reasons: string[] }[])[0]!.reasons, ['scope org:manage']);
      const revoked = await client.delete(`/api/v1/me/api-keys/${keyId}`, { token: ownerToken });
      assert.equal(revoked.status, 200, revoked.text);
      await resolvedFinding('api-key-wide-or-long-lived');
    });

    it('finds products without a declared support period, and resolves once each declares one (ETSI 5.3-13)', async () => {
      const open = await openFinding('product-without-support-period');
      assert.deepEqual(open.resources, [{ type: 'product', id: productId }]);
      assert.equal((open.evidence.products as { name: string }[])[0]!.name, 'Test sensor');
      const client = t.client();
      const until = new Date(t.clock.now() + 5 * 365 * DAY).toISOString();
      const set = await client.request('PUT', `/api/v1/products/${productId}/support-period`, {
        body: { supportUntil: until },
        token: ownerToken,
      });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.supportUntil, until);
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'product.support_period_set', limit: 1 });
      assert.equal(audited.entries[0]?.details.to, until);
      await resolvedFinding('product-without-support-period');
    });

    it('finds weak settings (plain MQTT port, rate limits off, trust-proxy on), and resolves each once changed back', async () => {
      const { config } = t.platform;
      const saved = { plainPort: config.mqtt.plainPort, rate: config.auth.loginRateLimitPerMinute, trustProxy: config.http.trustProxy };
      config.mqtt.plainPort = 1883;
      config.auth.loginRateLimitPerMinute = 1_000_000;
      config.http.trustProxy = true;
      try {
        const plain = await openFinding('plain-mqtt-port');
        assert.deepEqual(plain.evidence, { setting: 'mqtt.plainPort', port: 1883 });
        const rate = await openFinding('rate-limits-weak');
        assert.deepEqual(rate.evidence.settings, { 'auth.loginRateLimitPerMinute': 1_000_000 });
        const proxy = await openFinding('trust-proxy-on');
        assert.equal(proxy.severity, 'low');
      } finally {
        config.mqtt.plainPort = saved.plainPort;
        config.auth.loginRateLimitPerMinute = saved.rate;
        config.http.trustProxy = saved.trustProxy;
      }
      await resolvedFinding('plain-mqtt-port');
      assert.equal((await finding('rate-limits-weak'))?.state, 'resolved');
      assert.equal((await finding('trust-proxy-on'))?.state, 'resolved');
    });

    it('finds an edited audit entry, and resolves once the entry is restored', async () => {
      const row = await t.platform.db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'device.registered')
        .orderBy('seq')
        .executeTakeFirstOrThrow();
      await t.platform.db.updateTable('audit_log').set({ details: '{"serial":"forged"}' }).where('seq', '=', row.seq).execute();
      try {
        const open = await openFinding('audit-chain-broken');
        assert.equal(open.severity, 'critical');
        assert.ok((open.evidence.problems as number) >= 1);
        assert.ok((open.evidence.first as { seq: number }[]).some((p) => p.seq === row.seq));
      } finally {
        await t.platform.db.updateTable('audit_log').set({ details: row.details }).where('seq', '=', row.seq).execute();
      }
      await resolvedFinding('audit-chain-broken');
    });

    it('finds backups never made and never drilled, and resolves each once recorded', async () => {
      const stale = await openFinding('backup-stale');
      assert.deepEqual(stale.evidence, { lastBackupAt: null, maxAgeHours: 48 });
      const drill = await openFinding('backup-not-drilled');
      assert.equal(drill.evidence.lastDrillAt, null);
      // What `bulwark backup create` and `bulwark backup drill` record.
      await t.platform.audit.record({ organizationId: null, actor: { type: 'cli', id: 'test' }, action: 'backup.created', details: {} });
      await resolvedFinding('backup-stale');
      assert.equal((await finding('backup-not-drilled'))?.state, 'open');
      await t.platform.audit.record({ organizationId: null, actor: { type: 'cli', id: 'test' }, action: 'backup.drilled', details: {} });
      await resolvedFinding('backup-not-drilled');
      // Two days later the backup is stale again: the same finding reopens, its first sighting kept.
      t.clock.advance(3 * DAY);
      const again = await openFinding('backup-stale');
      assert.equal(again.id, stale.id);
      assert.equal(again.firstSeenAt, stale.firstSeenAt);
      assert.equal(again.resolvedAt, null);
      await t.platform.audit.record({ organizationId: null, actor: { type: 'cli', id: 'test' }, action: 'backup.created', details: {} });
      await resolvedFinding('backup-stale');
    });

    it('finds TUF metadata whose newest version expires soon, and resolves once a later version is signed', async () => {
      // The rows the image repository stores when it signs a role (the check reads the newest version of each).
      const row = { organization_id: orgId, role: 'targets', json: '{}', created_at: t.clock.now() };
      await t.platform.db
        .insertInto('tuf_metadata')
        .values({ ...row, version: 1001, expires_at: t.clock.now() + 3 * DAY })
        .execute();
      const open = await openFinding('update-metadata-expiring');
      assert.deepEqual(open.resources, [{ type: 'tuf_role', id: 'targets' }]);
      assert.equal((open.evidence.roles as { version: number }[])[0]!.version, 1001);
      await t.platform.db
        .insertInto('tuf_metadata')
        .values({ ...row, version: 1002, expires_at: t.clock.now() + 90 * DAY })
        .execute();
      await resolvedFinding('update-metadata-expiring');
    });

    it('records each run and audits it; the scheduled run covers every organization', async () => {
      const runResult = await run();
      assert.ok(runResult.checks.includes('operator-without-mfa'));
      assert.deepEqual(runResult.failures, []);
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'assessment.run', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, runResult.id);
      const all = await t.platform.assessment.service.runAll();
      assert.ok(all.some((r) => r.organizationId === orgId && r.trigger === 'schedule'));
      // Two runs at once over a new condition: both succeed, one finding.
      const { config } = t.platform;
      config.http.trustProxy = true;
      try {
        const both = await Promise.all([run(), run(), t.platform.assessment.service.runAll()]);
        assert.equal(both.length, 3);
        const { findings } = await t.platform.assessment.service.list(cliActor(orgId, 'test'), { check: 'trust-proxy-on', state: 'open' });
        assert.equal(findings.length, 1);
      } finally {
        config.http.trustProxy = false;
      }
      await resolvedFinding('trust-proxy-on');
    });

    it('finds a symmetric key older than policy, and resolves once rotated (near the end: it moves the clock a year)', async () => {
      const device = await t.platform.devices.service.register(cliActor(orgId, 'test'), { serial: 'SYM-1', productId });
      await t.platform.devices.symmetricKeys.issueKey(cliActor(orgId, 'test'), device.id);
      t.clock.advance(366 * DAY);
      const open = await openFinding('symmetric-key-old');
      assert.deepEqual(open.resources, [{ type: 'device', id: device.id }]);
      assert.equal((open.evidence.keys as { deviceId: string }[])[0]!.deviceId, device.id);
      await t.platform.devices.symmetricKeys.issueKey(cliActor(orgId, 'test'), device.id);
      await resolvedFinding('symmetric-key-old');
    });

    it("finds the platform's issuing CA near its end (run very last: it moves the clock years ahead)", async () => {
      const issuing = new X509Certificate(await t.platform.pki.deviceCaCertificate());
      t.clock.advance(Date.parse(issuing.validTo) - t.clock.now() - 5 * DAY);
      const open = await openFinding('ca-certificate-expiring');
      const fingerprint = issuing.fingerprint256.replace(/:/g, '').toLowerCase();
      assert.ok(
        open.resources.some((r) => r.type === 'ca_certificate' && r.id === fingerprint),
        JSON.stringify(open.resources),
      );
      assert.ok((open.evidence.certificates as { subject: string }[]).some((c) => c.subject === issuing.subject));
    });
  });
}
