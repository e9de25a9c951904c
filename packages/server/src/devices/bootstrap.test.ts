import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createOperator, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { Openssl } from '../testing/openssl.js';
import { operatorSession, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { certificateOf, curl, estCsr, estPost, opensslCa, opensslLeaf } from '../testing/est-client.js';

for (const engine of ENGINES) {
  describe(`EST enrollment with bootstrap certificates [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let tokenB: string;
    let auditorToken: string;
    const products: Record<string, string> = {};
    const ssl = new Openssl();
    before(async () => {
      ({ t, token } = await startOwnerPlatform(engine));
      auditorToken = (await operatorSession(t, token, 'auditor@example.com', 'auditor')).token;
      await t.platform.accounts.service.createOrganization({ slug: 'org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', 'org-b'));
      for (const [as, name] of [
        [token, 'a'],
        [tokenB, 'b'],
      ] as const)
        products[name] = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token: as })).body.id;
      ssl.write('ca.pem', t.ca);
      await opensslCa(ssl, 'factory', '/CN=Acme Factory CA/O=Acme');
      const registered = await t
        .client()
        .post('/api/v1/pki/bootstrap-cas', { name: 'Acme factory', certificate: ssl.read('factory.pem') }, { token });
      assert.equal(registered.status, 201, registered.text);
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    async function pending(serial: string, as = token, product = products.a): Promise<string> {
      const created = await t.client().post('/api/v1/devices', { serial, productId: product }, { token: as });
      assert.equal(created.status, 201, created.text);
      return created.body.id;
    }
    const status = async (id: string) =>
      (await t.platform.db.selectFrom('devices').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    const enroll = async (bootstrap: string, csrSubject = '/') => {
      // A refusal for the same reason from the same address is audited once a minute: each attempt gets its own.
      t.clock.advance(61_000);
      return estPost(t.server.port, t.ca, 'simpleenroll', await estCsr(ssl, `${bootstrap}-op`, csrSubject), {
        cert: ssl.read(`${bootstrap}.pem`),
        key: ssl.read(`${bootstrap}.key`),
      });
    };
    const lastRefusal = async () =>
      (await t.platform.audit.query({ action: 'device.bootstrap_enrolled', outcome: 'denied' })).entries[0]?.details.reason;

    it('registers CA certificates only: lists them for readers, refuses writers without devices:write, non-CA and duplicate certificates', async () => {
      const listed = await t.client().get('/api/v1/pki/bootstrap-cas', { token: auditorToken });
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(
        listed.body.bootstrapCas.map((c: { name: string; subject: string }) => [c.name, c.subject]),
        [['Acme factory', 'CN=Acme Factory CA\nO=Acme']],
      );
      assert.equal(
        (await t.client().post('/api/v1/pki/bootstrap-cas', { name: 'x', certificate: ssl.read('factory.pem') }, { token: auditorToken }))
          .status,
        403,
      );
      const duplicate = await t
        .client()
        .post('/api/v1/pki/bootstrap-cas', { name: 'again', certificate: ssl.read('factory.pem') }, { token });
      assert.deepEqual([duplicate.status, duplicate.body.error?.code], [409, 'pki.bootstrap_ca_exists']);
      const leaf = await opensslLeaf(ssl, 'factory', 'not-a-ca', '/CN=leaf');
      const notCa = await t.client().post('/api/v1/pki/bootstrap-cas', { name: 'leaf', certificate: leaf }, { token });
      assert.deepEqual([notCa.status, notCa.body.error?.code], [400, 'pki.bootstrap_ca_invalid']);
      assert.equal((await t.client().get('/api/v1/pki/bootstrap-cas', { token: tokenB })).body.bootstrapCas.length, 0);
    });

    it('enrolls a pending device once with curl and its factory certificate; the certificate names the platform ID', async () => {
      const id = await pending('BS-1');
      await opensslLeaf(ssl, 'factory', 'bs1', '/CN=BS-1');
      ssl.write('bs1-csr.b64', await estCsr(ssl, 'bs1-op', '/'));
      const answer = await curl([
        '--cacert',
        join(ssl.dir, 'ca.pem'),
        '--cert',
        join(ssl.dir, 'bs1.pem'),
        '--key',
        join(ssl.dir, 'bs1.key'),
        '-H',
        'content-type: application/pkcs10',
        '--data-binary',
        `@${join(ssl.dir, 'bs1-csr.b64')}`,
        `https://localhost:${t.server.port}/.well-known/est/simpleenroll`,
      ]);
      assert.equal(answer.status, 200, answer.body);
      const issued = new X509Certificate(await certificateOf(ssl, 'bs1-issued', answer.body));
      assert.equal(issued.subject, `CN=${id}`);
      assert.equal((await t.platform.devices.identity.fromCertificate(issued)).deviceId, id);
      assert.equal(await status(id), 'active');
      const [audited] = (await t.platform.audit.query({ action: 'device.bootstrap_enrolled', targetId: id })).entries;
      assert.equal(audited?.details.serial, 'BS-1');

      const again = await enroll('bs1');
      assert.deepEqual(
        [again.status, again.error?.code],
        [401, 'device.auth_failed'],
        'an enrolled device renews through simplereenroll, not its bootstrap certificate',
      );
      assert.equal(await lastRefusal(), 'unknown_device');
    });

    it('refuses a CSR naming another device, leaving the device pending for a correct attempt', async () => {
      const [id, other] = [await pending('BS-2'), await pending('BS-2-other')];
      await opensslLeaf(ssl, 'factory', 'bs2', '/CN=BS-2');
      const res = await enroll('bs2', `/CN=${other}`);
      assert.deepEqual([res.status, res.error?.code], [403, 'pki.identity_mismatch']);
      assert.equal(await status(id), 'pending');
      assert.equal((await enroll('bs2', `/CN=${id}`)).status, 200);
    });

    it('refuses a bootstrap certificate from a CA nobody registered', async () => {
      const id = await pending('BS-3');
      await opensslCa(ssl, 'rogue', '/CN=Acme Factory CA/O=Acme');
      await opensslLeaf(ssl, 'rogue', 'bs3', '/CN=BS-3');
      const res = await enroll('bs3');
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.equal(await lastRefusal(), 'unknown_issuer');
      assert.equal(await status(id), 'pending');
    });

    it('refuses a bootstrap certificate naming a device of another organization that does not trust the CA', async () => {
      const id = await pending('BS-B', tokenB, products.b);
      await opensslLeaf(ssl, 'factory', 'bsb', '/CN=BS-B');
      const res = await enroll('bsb');
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.equal(await lastRefusal(), 'unknown_device');
      assert.equal(await status(id), 'pending');
    });

    it('refuses certificates of a CA once it is deleted', async () => {
      await opensslCa(ssl, 'line2', '/CN=Acme Line 2 CA/O=Acme');
      const registered = await t
        .client()
        .post('/api/v1/pki/bootstrap-cas', { name: 'Line 2', certificate: ssl.read('line2.pem') }, { token });
      assert.equal(registered.status, 201, registered.text);
      const id = await pending('BS-5');
      await opensslLeaf(ssl, 'line2', 'bs5', '/CN=BS-5');
      const deleted = await t.client().delete(`/api/v1/pki/bootstrap-cas/${registered.body.id}`, { token });
      assert.equal(deleted.status, 200, deleted.text);
      assert.equal((await t.client().delete(`/api/v1/pki/bootstrap-cas/${registered.body.id}`, { token })).status, 404);
      const res = await enroll('bs5');
      assert.deepEqual([res.status, res.error?.code], [401, 'device.auth_failed']);
      assert.equal(await lastRefusal(), 'unknown_issuer');
      assert.equal(await status(id), 'pending');
      const [audited] = (await t.platform.audit.query({ action: 'pki.bootstrap_ca_deleted', targetId: registered.body.id })).entries;
      assert.equal(audited?.outcome, 'success');
    });
  });
}
