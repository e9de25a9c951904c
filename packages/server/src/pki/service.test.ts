import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINES } from '../testing/engines.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { BulwarkError } from '../errors.js';

const operator = { type: 'cli' as const, id: 'test' };

for (const engine of ENGINES) {
  describe(`PKI service [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    const ssl = new Openssl();
    before(async () => {
      t = await startTestPlatform(engine);
      org = (await t.platform.accounts.store.listOrganizations())[0]!.id;
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    const pki = (name: string) => join(t.config.dataDir, 'pki', name);
    async function code(promise: Promise<unknown>): Promise<string> {
      try {
        await promise;
      } catch (error) {
        assert.ok(error instanceof BulwarkError, String(error));
        return error.code;
      }
      assert.fail('the operation succeeded');
    }

    it('bulwark init makes a root (pathlen 1) and device and server issuing CAs; the HTTPS chain verifies against ca.pem', async () => {
      assert.match(await ssl.must(['x509', '-in', pki('ca.pem'), '-noout', '-text']), /CA:TRUE, pathlen:1/);
      for (const name of ['device-ca.pem', 'server-ca.pem']) {
        assert.match(await ssl.must(['x509', '-in', pki(name), '-noout', '-text']), /CA:TRUE, pathlen:0/);
        assert.match(await ssl.must(['verify', '-CAfile', pki('ca.pem'), pki(name)]), /OK/);
      }
      assert.match(
        await ssl.must([
          'verify',
          '-CAfile',
          pki('ca.pem'),
          '-untrusted',
          pki('server-ca.pem'),
          '-purpose',
          'sslserver',
          pki('server.pem'),
        ]),
        /OK/,
      );
      const handshake = await ssl.run(
        [
          's_client',
          '-connect',
          `127.0.0.1:${t.server.port}`,
          '-servername',
          'localhost',
          '-CAfile',
          pki('ca.pem'),
          '-verify_return_error',
          '-brief',
        ],
        'Q\n',
      );
      assert.match(handshake.output, /Verification: OK/);
    });

    it('serves the CA chain and a CRL openssl parses, without authentication', async () => {
      const chain = await t.client().get('/pki/ca.pem');
      assert.equal(chain.status, 200);
      assert.equal(chain.text, readFileSync(pki('device-ca.pem'), 'utf8') + readFileSync(pki('ca.pem'), 'utf8'));
      const crl = await t.client().get('/pki/crl.pem');
      assert.equal(crl.status, 200);
      assert.match(crl.text, /^-----BEGIN X509 CRL-----\n/);
      const text = await ssl.must(['crl', '-in', ssl.write('empty-crl.pem', crl.text), '-noout', '-text']);
      assert.match(text, /No Revoked Certificates/);
      assert.match(text, /X509v3 CRL Number/);
      assert.match(await ssl.must(['crl', '-in', 'empty-crl.pem', '-noout', '-CAfile', pki('device-ca.pem')]), /verify OK/);
    });

    it('issues from an openssl CSR, records and audits it; after revocation openssl verify -crl_check refuses it', async () => {
      const csr = await ssl.csr('dev', '/CN=sensor-42', P256);
      const cert = await t.platform.pki.issueDeviceCertificate({ organizationId: org, deviceId: 'sensor-42', csrPem: csr }, operator);
      const row = await t.platform.db
        .selectFrom('issued_certificates')
        .selectAll()
        .where('serial', '=', cert.serial)
        .executeTakeFirstOrThrow();
      assert.deepEqual(
        [row.device_id, row.organization_id, row.status, row.subject, row.pem],
        ['sensor-42', org, 'active', 'CN=sensor-42', cert.pem],
      );
      const issued = await t.platform.audit.query({ action: 'pki.certificate_issued', targetId: cert.serial });
      assert.equal(issued.entries.length, 1);

      ssl.write('chain.pem', (await t.client().get('/pki/ca.pem')).text);
      ssl.write('dev.pem', cert.pem);
      const verify = async () => {
        ssl.write('crl.pem', (await t.client().get('/pki/crl.pem')).text);
        return ssl.run([
          'verify',
          '-crl_check',
          '-CAfile',
          pki('ca.pem'),
          '-untrusted',
          pki('device-ca.pem'),
          '-CRLfile',
          'crl.pem',
          'dev.pem',
        ]);
      };
      const before = await verify();
      assert.equal(before.ok, true, before.output);

      const revoked = await t.platform.pki.revoke(
        { organizationId: org, serial: cert.serial.toUpperCase(), reason: 'keyCompromise' },
        operator,
      );
      assert.equal(revoked.serial, cert.serial);
      const refused = await verify();
      assert.equal(refused.ok, false);
      assert.match(refused.output, /certificate revoked/);
      const listing = await ssl.must(['crl', '-in', 'crl.pem', '-noout', '-text']);
      assert.match(listing, new RegExp(`Serial Number: ${cert.serial}`, 'i'));
      assert.match(listing, /Key Compromise/);

      const stored = await t.platform.db
        .selectFrom('issued_certificates')
        .selectAll()
        .where('serial', '=', cert.serial)
        .executeTakeFirstOrThrow();
      assert.deepEqual([stored.status, stored.revocation_reason], ['revoked', 'keyCompromise']);
      assert.equal((await t.platform.audit.query({ action: 'pki.certificate_revoked', targetId: cert.serial })).entries.length, 1);
      assert.equal(
        await code(t.platform.pki.revoke({ organizationId: org, serial: cert.serial, reason: 'superseded' }, operator)),
        'pki.already_revoked',
      );
      assert.equal(
        await code(t.platform.pki.revoke({ organizationId: 'another-org', serial: cert.serial, reason: 'superseded' }, operator)),
        'resource.not_found',
      );
    });

    it('audits refused CSRs with their code', async () => {
      const csr = await ssl.csr('victim', '/CN=someone-else', P256);
      assert.equal(
        await code(t.platform.pki.issueDeviceCertificate({ organizationId: org, deviceId: 'attacker-1', csrPem: csr }, operator)),
        'pki.identity_mismatch',
      );
      const [entry] = (await t.platform.audit.query({ action: 'pki.certificate_issued', targetId: 'attacker-1' })).entries;
      assert.equal(entry?.outcome, 'denied');
      assert.equal(entry?.details.code, 'pki.identity_mismatch');
    });

    it('rebuilds the CRL once half its 24-hour lifetime has passed, with a higher CRL number', async () => {
      const number = async () =>
        /X509v3 CRL Number:\s*\n?\s*(\d+)/.exec(
          await ssl.must(['crl', '-in', ssl.write('n.pem', await t.platform.pki.crlFor()), '-noout', '-text']),
        )![1];
      const first = await number();
      t.clock.advance(11 * 3_600_000);
      assert.equal(await number(), first);
      t.clock.advance(2 * 3_600_000);
      assert.equal(Number(await number()), Number(first) + 1);
      const text = await ssl.must(['crl', '-in', 'n.pem', '-noout', '-text']);
      const [, last, next] = /Last Update: (.+)\n\s*Next Update: (.+)/.exec(text)!;
      assert.equal(new Date(next!).getTime() - new Date(last!).getTime(), 24 * 3_600_000);
    });
  });
}
