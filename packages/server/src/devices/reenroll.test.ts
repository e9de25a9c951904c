import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { join } from 'node:path';
import { cliActor, type Actor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { certificateOf, curl, estCsr, estPost, opensslCa, opensslLeaf, opensslSubject } from '../testing/est-client.js';

for (const engine of ENGINES) {
  describe(`EST simplereenroll [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let actor: Actor;
    let product: string;
    const ssl = new Openssl();
    before(async () => {
      t = await startTestPlatform(engine);
      const org = await t.platform.accounts.store.organizationBySlug(t.org);
      actor = cliActor(org!.id, 'test');
      product = (await t.platform.devices.service.createProduct(actor, { name: 'Sensor' })).id;
      ssl.write('ca.pem', t.ca);
      ssl.write('chain.pem', await t.platform.pki.caChain());
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    let serials = 0;
    /** A device enrolled at the factory: its key and certificate are `name`.key and `name`.pem. */
    async function enrolled(name: string): Promise<{ id: string; serial: string; cert: string; key: string }> {
      const device = await t.platform.devices.service.register(actor, { serial: `RE-${++serials}`, productId: product });
      const csr = await ssl.csr(name, `/CN=${device.id}`, P256);
      const cert = await t.platform.devices.enrollment.provision(actor, device.id, csr);
      ssl.write(`${name}.pem`, cert.certificate);
      return { id: device.id, serial: cert.serial, cert: cert.certificate, key: ssl.read(`${name}.key`) };
    }
    const reenroll = (csr: string, client?: { cert: string; key: string; agent?: https.Agent }) =>
      estPost(t.server.port, t.ca, 'simplereenroll', csr, client ?? {});
    const renewals = async (previousSerial: string) =>
      (await t.platform.audit.query({ action: 'pki.certificate_renewed' })).entries.filter(
        (e) => e.details.previousSerial === previousSerial,
      );
    const refusals = async () => (await t.platform.audit.query({ action: 'pki.certificate_renewed', outcome: 'denied' })).entries;
    const at = () => String(Math.ceil(t.clock.now() / 1000));

    it('renews with curl and openssl alone (same key): openssl verify -crl_check accepts the new certificate and the old one stays valid', async () => {
      const device = await enrolled('curl');
      ssl.write('curl-renew.b64', await estCsr(ssl, 'curl-renew', `/CN=${device.id}`, ['-key', 'curl.key']));
      const answer = await curl([
        '--cacert',
        join(ssl.dir, 'ca.pem'),
        '--cert',
        join(ssl.dir, 'curl.pem'),
        '--key',
        join(ssl.dir, 'curl.key'),
        '-H',
        'content-type: application/pkcs10',
        '--data-binary',
        `@${join(ssl.dir, 'curl-renew.b64')}`,
        `https://localhost:${t.server.port}/.well-known/est/simplereenroll`,
      ]);
      assert.equal(answer.status, 200, answer.body);
      const renewed = await certificateOf(ssl, 'curl-new', answer.body);
      const crl = await curl(['--cacert', join(ssl.dir, 'ca.pem'), `https://localhost:${t.server.port}/pki/crl.pem`]);
      ssl.write('crl.pem', crl.body);
      const verified = await ssl.run([
        'verify',
        '-attime',
        at(),
        '-crl_check',
        '-CAfile',
        'ca.pem',
        '-untrusted',
        'chain.pem',
        '-CRLfile',
        'crl.pem',
        'curl-new.pem',
      ]);
      assert.equal(verified.ok, true, verified.output);
      const [before, after] = [new X509Certificate(device.cert), new X509Certificate(renewed)];
      assert.notEqual(after.serialNumber, before.serialNumber);
      assert.equal(after.subject, `CN=${device.id}`);
      assert.ok(after.publicKey.export({ type: 'spki', format: 'der' }).equals(before.publicKey.export({ type: 'spki', format: 'der' })));
      const [audited] = await renewals(device.serial);
      assert.deepEqual(
        [audited?.outcome, audited?.details.rekeyed, audited?.target.id],
        ['success', false, after.serialNumber.toLowerCase()],
      );
      // Not revoked: a device that failed to store the new certificate can still use the old one.
      assert.equal((await t.platform.devices.identity.fromCertificate(before)).deviceId, device.id);
    });

    it('re-keys with a new key, and the renewed certificate can itself re-enroll', async () => {
      const device = await enrolled('rekey');
      const first = await reenroll(await estCsr(ssl, 'rekey-2', `/CN=${device.id}`), { cert: device.cert, key: device.key });
      assert.equal(first.status, 200, first.text);
      const second = await certificateOf(ssl, 'rekey-2-cert', first.text);
      assert.equal((await renewals(device.serial))[0]?.details.rekeyed, true);
      const again = await reenroll(await estCsr(ssl, 'rekey-3', `/CN=${device.id}`), { cert: second, key: ssl.read('rekey-2.key') });
      assert.equal(again.status, 200, again.text);
    });

    it('refuses re-enrollment without a client certificate', async () => {
      const device = await enrolled('anonymous');
      const res = await reenroll(await estCsr(ssl, 'anonymous-2', `/CN=${device.id}`));
      assert.deepEqual([res.status, res.error?.code], [401, 'device.certificate_required']);
    });

    it('refuses a revoked certificate', async () => {
      const device = await enrolled('revoked');
      await t.platform.pki.revoke(
        { organizationId: actor.organizationId, serial: device.serial, reason: 'keyCompromise' },
        { type: 'cli', id: 'test' },
      );
      const res = await reenroll(await estCsr(ssl, 'revoked-2', `/CN=${device.id}`), { cert: device.cert, key: device.key });
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.equal((await refusals())[0]?.details.reason, 'revoked');
    });

    it('refuses the certificate of a disabled device and of a retired one', async () => {
      for (const [action, reason] of [
        ['disable', 'device_disabled'],
        ['retire', 'device_retired'],
      ] as const) {
        const device = await enrolled(action);
        await t.platform.devices.service.transition(actor, device.id, action);
        const res = await reenroll(await estCsr(ssl, `${action}-2`, `/CN=${device.id}`), { cert: device.cert, key: device.key });
        assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed'], action);
        assert.equal((await refusals())[0]?.details.reason, reason);
      }
    });

    it('refuses a CSR naming another device', async () => {
      const [device, other] = [await enrolled('mine'), await enrolled('theirs')];
      const res = await reenroll(await estCsr(ssl, 'mine-2', `/CN=${other.id}`), { cert: device.cert, key: device.key });
      assert.deepEqual([res.status, res.error?.code], [403, 'pki.identity_mismatch']);
      assert.equal((await renewals(device.serial)).length, 0);
    });

    it('refuses a self-signed certificate and one from another CA bearing our device CA name, both naming a real device', async () => {
      const device = await enrolled('victim');
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
      const selfSigned = await reenroll(await estCsr(ssl, 'self-2', `/CN=${device.id}`), {
        cert: ssl.read('self.pem'),
        key: ssl.read('self.key'),
      });
      assert.deepEqual([selfSigned.status, selfSigned.error?.code], [401, 'device.auth_failed']);

      await opensslCa(ssl, 'lookalike', opensslSubject(await t.platform.pki.deviceCaCertificate()));
      const forged = await opensslLeaf(ssl, 'lookalike', 'forged', `/CN=${device.id}`);
      const res = await reenroll(await estCsr(ssl, 'forged-2', `/CN=${device.id}`), { cert: forged, key: ssl.read('forged.key') });
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.ok(['unknown_issuer', 'bad_signature'].includes((await refusals())[0]?.details.reason as string));
    });

    it('records a flood of refused self-signed re-enrollments as one audit entry a minute, with the count of the rest', async () => {
      const device = await enrolled('flooded');
      await ssl.must([
        'req',
        '-x509',
        ...P256,
        '-nodes',
        '-keyout',
        'flood.key',
        '-subj',
        `/CN=${device.id}`,
        '-days',
        '30',
        '-out',
        'flood.pem',
      ]);
      const csr = await estCsr(ssl, 'flood-2', `/CN=${device.id}`);
      const client = { cert: ssl.read('flood.pem'), key: ssl.read('flood.key') };
      t.clock.advance(61_000);
      const before = (await t.platform.audit.query({ limit: 1 })).entries[0]!.seq;
      const attempts = 460;
      const statuses = new Map<number, number>();
      // Ten kept-alive connections carry the flood: the refusal, not the TLS handshake, is under test.
      const agent = new https.Agent({ keepAlive: true, maxSockets: 10, ...client });
      try {
        for (let sent = 0; sent < attempts; sent += 10) {
          const answers = await Promise.all(
            Array.from({ length: Math.min(10, attempts - sent) }, () => reenroll(csr, { ...client, agent })),
          );
          for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        }
      } finally {
        agent.destroy();
      }
      assert.deepEqual([...statuses], [[401, attempts]]);
      const written = (await t.platform.audit.query({ limit: 500 })).entries.filter((e) => e.seq > before);
      assert.deepEqual(
        written.map((e) => [e.action, e.outcome, e.details.reason, e.details.refusalsNotRecorded]),
        [['pki.certificate_renewed', 'denied', 'unknown_issuer', undefined]],
      );

      t.clock.advance(61_000);
      assert.equal((await reenroll(csr, client)).status, 401);
      const [next] = await refusals();
      assert.deepEqual([next?.details.reason, next?.details.refusalsNotRecorded], ['unknown_issuer', attempts - 1]);
    });

    it('refuses an expired certificate (last: moves the clock past a year)', async () => {
      const device = await enrolled('expired');
      t.clock.advance(366 * 86_400_000);
      const res = await reenroll(await estCsr(ssl, 'expired-2', `/CN=${device.id}`), { cert: device.cert, key: device.key });
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.equal((await refusals())[0]?.details.reason, 'expired');
    });
  });
}
