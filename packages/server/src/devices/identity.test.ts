import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { cliActor, type Actor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { opensslCa, opensslLeaf, opensslSubject } from '../testing/est-client.js';
import { DeviceAuthenticationError, type DeviceAuthFailure } from './identity.js';

for (const engine of ENGINES) {
  describe(`device certificate verification [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let actor: Actor;
    let product: string;
    const ssl = new Openssl();
    before(async () => {
      t = await startTestPlatform(engine);
      actor = cliActor((await t.platform.accounts.store.organizationBySlug(t.org))!.id, 'test');
      product = (await t.platform.devices.service.createProduct(actor, { name: 'Sensor' })).id;
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    let serials = 0;
    async function enrolled(): Promise<{ id: string; serial: string; cert: X509Certificate }> {
      const device = await t.platform.devices.service.register(actor, { serial: `ID-${++serials}`, productId: product });
      const issued = await t.platform.devices.enrollment.provision(
        actor,
        device.id,
        await ssl.csr(`d${serials}`, `/CN=${device.id}`, P256),
      );
      return { id: device.id, serial: issued.serial, cert: new X509Certificate(issued.certificate) };
    }
    const verifier = () => t.platform.devices.identity;
    async function refused(cert: X509Certificate | Buffer, reason: DeviceAuthFailure): Promise<void> {
      await assert.rejects(verifier().fromCertificate(cert), (error: unknown) => {
        assert.ok(error instanceof DeviceAuthenticationError, String(error));
        assert.equal(error.reason, reason);
        assert.equal(error.code, 'device.auth_failed');
        return true;
      });
    }

    it('proves the identity of a certificate we issued, from the parsed certificate or its DER, quarantined devices included', async () => {
      const device = await enrolled();
      const identity = await verifier().fromCertificate(device.cert.raw);
      assert.deepEqual(
        { ...identity, credential: { ...identity.credential, notAfter: undefined } },
        {
          organizationId: actor.organizationId,
          deviceId: device.id,
          serial: `ID-${serials}`,
          productId: product,
          status: 'active',
          credential: { type: 'certificate', certificateSerial: device.serial, notAfter: undefined },
        },
      );
      assert.equal((identity.credential as { notAfter: number }).notAfter, Date.parse(device.cert.validTo));
      await t.platform.devices.service.transition(actor, device.id, 'quarantine');
      assert.equal((await verifier().fromCertificate(device.cert)).status, 'quarantined');
    });

    it('refuses bytes that are no certificate, a self-signed one and one from a look-alike CA', async () => {
      const device = await enrolled();
      await refused(Buffer.from('not a certificate'), 'malformed');
      await ssl.must([
        'req',
        '-x509',
        ...P256,
        '-nodes',
        '-keyout',
        'self.key',
        '-subj',
        `/CN=${device.id}`,
        '-days',
        '30',
        '-out',
        'self.pem',
      ]);
      await refused(new X509Certificate(ssl.read('self.pem')), 'unknown_issuer');
      await opensslCa(ssl, 'lookalike', opensslSubject(await t.platform.pki.deviceCaCertificate()));
      const forged = new X509Certificate(await opensslLeaf(ssl, 'lookalike', 'forged', `/CN=${device.id}`));
      await assert.rejects(
        verifier().fromCertificate(forged),
        (e: unknown) => e instanceof DeviceAuthenticationError && ['unknown_issuer', 'bad_signature'].includes(e.reason),
      );
    });

    it('refuses a certificate of our CA that we hold no record of, or whose record names other bytes', async () => {
      const [gone, altered] = [await enrolled(), await enrolled()];
      await t.platform.db.deleteFrom('issued_certificates').where('serial', '=', gone.serial).execute();
      await refused(gone.cert, 'unknown_certificate');
      await t.platform.db
        .updateTable('issued_certificates')
        .set({ fingerprint_sha256: '00'.repeat(32) })
        .where('serial', '=', altered.serial)
        .execute();
      await refused(altered.cert, 'unknown_certificate');
    });

    it('refuses a revoked certificate, and the certificates of disabled and retired devices, even proved just before', async () => {
      const [revoked, disabled, retired] = [await enrolled(), await enrolled(), await enrolled()];
      // Each proved once first (its chain and signature are then remembered): the record is still read every time.
      for (const device of [revoked, disabled, retired])
        assert.equal((await verifier().fromCertificate(device.cert.raw)).deviceId, device.id);
      await t.platform.pki.revoke(
        { organizationId: actor.organizationId, serial: revoked.serial, reason: 'keyCompromise' },
        { type: 'cli', id: 'test' },
      );
      await refused(revoked.cert, 'revoked');
      await t.platform.devices.service.transition(actor, disabled.id, 'disable');
      await refused(disabled.cert, 'device_disabled');
      await t.platform.devices.service.transition(actor, retired.id, 'retire');
      await refused(retired.cert, 'device_retired');
    });

    it('refuses a certificate whose device is not in the organization it was issued for', async () => {
      const device = await enrolled();
      await t.platform.accounts.service.createOrganization({ slug: 'elsewhere', name: 'Elsewhere' }, { type: 'cli', id: 'test' });
      const other = await t.platform.accounts.store.organizationBySlug('elsewhere');
      await t.platform.db
        .updateTable('issued_certificates')
        .set({ organization_id: other!.id })
        .where('serial', '=', device.serial)
        .execute();
      await refused(device.cert, 'unknown_device');
    });

    it('checks validity at the platform clock: not yet valid before, expired after (last: moves the clock)', async () => {
      const device = await enrolled();
      const now = t.clock.now();
      t.clock.set(Date.parse(device.cert.validFrom) - 60_000);
      await refused(device.cert, 'not_yet_valid');
      t.clock.set(Date.parse(device.cert.validTo) + 1000);
      await refused(device.cert, 'expired');
      t.clock.set(now);
      assert.equal((await verifier().fromCertificate(device.cert)).deviceId, device.id);
    });
  });
}
