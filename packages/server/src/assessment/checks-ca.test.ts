/**
 * The CA-trust audit checks on a real platform, on both engines (the pattern of checks.test.ts):
 * a CA recorded as revoked with device certificates it signed still active, a revoked bootstrap
 * CA still registered, weak device and CA keys, certificates older than the rotation policy. Each
 * bad condition is created, a run opens the finding with its evidence, the condition is fixed,
 * the next run resolves it. Certificates another CA signed are recorded as the platform records
 * its own (the row an issuance leaves), since the platform itself never signs such certificates.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { cliActor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { makeCsr, organizationIdOf, provisionTestDevice, testProduct } from '../testing/devices.js';
import { opensslCa, opensslLeaf } from '../testing/est-client.js';
import { Openssl } from '../testing/openssl.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import type { FindingView } from './model.js';

const DAY = 86_400_000;

for (const engine of ENGINES) {
  describe(`CA trust checks [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let orgId: string;
    let productId: string;
    let ssl: Openssl;
    const cli = { type: 'cli', id: 'test' } as const;

    const run = () => t.platform.assessment.service.run(cliActor(orgId, 'test'), 'cli');
    async function finding(check: string, subject = ''): Promise<FindingView | undefined> {
      const { findings } = await t.platform.assessment.service.list(cliActor(orgId, 'test'), { check, limit: 200 });
      return findings.find((f) => f.subject === subject);
    }
    async function expectState(check: string, state: 'open' | 'resolved', subject = ''): Promise<FindingView> {
      await run();
      const found = await finding(check, subject);
      assert.ok(found, `no ${check} finding`);
      assert.equal(found.state, state, `${check} is ${found.state}: ${JSON.stringify(found.evidence)}`);
      return found;
    }

    /** A device certificate signed by the openssl CA `ca` with `keyArgs`, recorded as an issuance would record it. */
    async function recordForeignCertificate(ca: string, name: string, keyArgs: string[]): Promise<{ serial: string; deviceId: string }> {
      const device = await t.platform.devices.service.register(cliActor(orgId, 'test'), { serial: name, productId });
      const pem = await opensslLeaf(ssl, ca, name, `/CN=${device.id}`, 365, keyArgs);
      const cert = new X509Certificate(pem);
      const serial = cert.serialNumber.toLowerCase();
      await t.platform.db
        .insertInto('issued_certificates')
        .values({
          serial,
          organization_id: orgId,
          device_id: device.id,
          subject: cert.subject,
          not_before: Date.parse(cert.validFrom),
          not_after: Date.parse(cert.validTo),
          fingerprint_sha256: createHash('sha256').update(cert.raw).digest('hex'),
          pem,
          status: 'active',
          revoked_at: null,
          revocation_reason: null,
          created_at: t.clock.now(),
        })
        .execute();
      return { serial, deviceId: device.id };
    }

    before(async () => {
      t = await startTestPlatform(engine, { assessment: { intervalMinutes: 0 } });
      orgId = await organizationIdOf(t.platform, t.org);
      productId = await testProduct(t.platform, orgId);
      ssl = new Openssl();
      t.clock.advance(60_000); // certificates openssl makes from now on are valid on the platform's clock
    });
    after(async () => {
      ssl?.close();
      await t?.close();
    });

    it('finds device certificates still active under a CA recorded as revoked, and resolves once they are revoked', async () => {
      const caPem = await opensslCa(ssl, 'old-issuing', '/CN=Old issuing CA');
      const issued = await recordForeignCertificate('old-issuing', 'OLD-1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
      await run();
      assert.equal(await finding('revoked-ca-issued-active', fingerprint(caPem)), undefined, 'nothing while the CA is trusted');
      // The offline root revoked the old issuing CA; the operator records it deployment-wide.
      const revoked = await t.platform.caRevocations.revoke(null, { certificate: caPem, reason: 'cACompromise' });
      assert.equal(revoked.fingerprintSha256, fingerprint(caPem));
      const open = await expectState('revoked-ca-issued-active', 'open', fingerprint(caPem));
      assert.equal(open.severity, 'critical');
      assert.deepEqual(open.evidence.certificates, [issued]);
      assert.equal((open.evidence.ca as { reason: string }).reason, 'cACompromise');
      assert.deepEqual(open.resources, [
        { type: 'ca_certificate', id: fingerprint(caPem) },
        { type: 'certificate', id: issued.serial },
        { type: 'device', id: issued.deviceId },
      ]);
      const audited = await t.platform.audit.query({ action: 'pki.ca_revoked', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, fingerprint(caPem));
      // A certificate the platform's own issuing CA signed is not counted.
      await provisionTestDevice(t.platform, orgId, productId, 'OWN-1');
      await t.platform.pki.revoke({ organizationId: orgId, serial: issued.serial, reason: 'superseded' }, cli);
      await expectState('revoked-ca-issued-active', 'resolved', fingerprint(caPem));
      await assert.rejects(t.platform.caRevocations.revoke(null, { certificate: caPem, reason: 'cACompromise' }), {
        code: 'resource.conflict',
      });
    });

    it('finds a revoked bootstrap CA still registered, and resolves once it is deleted; refuses a certificate that is no CA', async () => {
      const actor = cliActor(orgId, 'test');
      const pem = await opensslCa(ssl, 'factory', '/CN=Factory CA compromised');
      t.clock.advance(60_000);
      const ca = await t.platform.devices.bootstrapCas.register(actor, { name: 'Factory 3', certificate: pem });
      await t.platform.caRevocations.revoke(actor, { certificate: pem, reason: 'keyCompromise' });
      const open = await expectState('revoked-ca-still-active', 'open');
      assert.equal(open.severity, 'critical');
      assert.deepEqual(open.resources, [{ type: 'bootstrap_ca', id: ca.id }]);
      const evidence = (open.evidence.cas as { kind: string; name: string; use: string; revocation: { reason: string } }[])[0]!;
      assert.deepEqual([evidence.kind, evidence.name, evidence.revocation.reason], ['bootstrap', 'Factory 3', 'keyCompromise']);
      await t.platform.devices.bootstrapCas.delete(actor, ca.id);
      await expectState('revoked-ca-still-active', 'resolved');
      const device = await provisionTestDevice(t.platform, orgId, productId, 'LEAF-1');
      const leaf = (
        await t.platform.db
          .selectFrom('issued_certificates')
          .select('pem')
          .where('serial', '=', device.certSerial)
          .executeTakeFirstOrThrow()
      ).pem;
      await assert.rejects(t.platform.caRevocations.revoke(actor, { certificate: leaf, reason: 'keyCompromise' }), /not a CA certificate/);
    });

    it('finds weak device keys (RSA 1024, a 192-bit curve) and a weak CA key, and resolves once they are replaced', async () => {
      await opensslCa(ssl, 'maker', '/CN=Maker CA');
      const rsa = await recordForeignCertificate('maker', 'WEAK-RSA', ['-newkey', 'rsa:1024']);
      const curve = await recordForeignCertificate('maker', 'WEAK-EC', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime192v1']);
      // A bootstrap CA registered before the platform refused short keys (the row it left then).
      await ssl.must([
        'req',
        '-x509',
        '-newkey',
        'rsa:1024',
        '-nodes',
        '-keyout',
        'weak-ca.key',
        '-subj',
        '/CN=Weak CA',
        '-days',
        '365',
        '-out',
        'weak-ca.pem',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ]);
      const weakCa = new X509Certificate(ssl.read('weak-ca.pem'));
      const caId = 'legacy-weak-ca';
      await t.platform.db
        .insertInto('bootstrap_cas')
        .values({
          id: caId,
          organization_id: orgId,
          name: 'Legacy line',
          subject: weakCa.subject,
          subject_sha256: createHash('sha256').update(weakCa.subject).digest('hex'),
          fingerprint_sha256: fingerprint(weakCa.toString()),
          pem: weakCa.toString(),
          not_after: Date.parse(weakCa.validTo),
          created_at: t.clock.now(),
          deleted_at: null,
        })
        .execute();
      const open = await expectState('key-quality-weak', 'open');
      assert.equal(open.severity, 'high');
      const devices = open.evidence.devices as { serial: string; weakness: string }[];
      assert.deepEqual(devices.map((d) => d.serial).sort(), [rsa.serial, curve.serial].sort());
      assert.match(devices.find((d) => d.serial === rsa.serial)!.weakness, /RSA 1024 bits/);
      assert.match(devices.find((d) => d.serial === curve.serial)!.weakness, /EC curve prime192v1/);
      assert.deepEqual(open.evidence.cas, [
        { type: 'bootstrap_ca', id: caId, subject: 'Legacy line', weakness: 'RSA 1024 bits (at least 2048)' },
      ]);
      assert.equal(open.evidence.weakDeviceCertificates, 2);
      for (const { serial } of [rsa, curve]) await t.platform.pki.revoke({ organizationId: orgId, serial, reason: 'superseded' }, cli);
      assert.equal((await expectState('key-quality-weak', 'open')).evidence.weakDeviceCertificates, 0, 'the CA is still weak');
      await t.platform.devices.bootstrapCas.delete(cliActor(orgId, 'test'), caId);
      await expectState('key-quality-weak', 'resolved');
    });

    it('finds a certificate older than the rotation policy, and resolves once it is rotated (last: it moves the clock)', async () => {
      const { config } = t.platform;
      const saved = config.assessment.certificateMaxAgeDays;
      config.assessment.certificateMaxAgeDays = 30;
      try {
        const device = await provisionTestDevice(t.platform, orgId, productId, 'AGE-1');
        await run();
        assert.notEqual((await finding('certificate-age-beyond-policy'))?.state, 'open', 'new certificates are within policy');
        t.clock.advance(45 * DAY);
        const open = await expectState('certificate-age-beyond-policy', 'open');
        assert.equal(open.severity, 'medium');
        const certificates = open.evidence.certificates as { serial: string; deviceId: string; ageDays: number }[];
        const mine = certificates.find((c) => c.serial === device.certSerial);
        assert.ok(mine, JSON.stringify(certificates));
        assert.equal(mine.ageDays, 45);
        assert.equal(open.evidence.maxAgeDays, 30);
        // Rotation: a new certificate for each old one, the old ones revoked.
        for (const old of certificates) {
          const { csr } = await makeCsr(old.deviceId);
          await t.platform.pki.issueDeviceCertificate({ organizationId: orgId, deviceId: old.deviceId, csrPem: csr }, cli);
          await t.platform.pki.revoke({ organizationId: orgId, serial: old.serial, reason: 'superseded' }, cli);
        }
        await expectState('certificate-age-beyond-policy', 'resolved');
      } finally {
        config.assessment.certificateMaxAgeDays = saved;
      }
    });
  });
}

function fingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}
