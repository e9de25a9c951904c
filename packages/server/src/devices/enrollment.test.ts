import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createOperator, insertConsumer, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { operatorSession, ownerSession, startTestPlatform, STRONG_PASSWORD, totp, type TestPlatform } from '../testing/server.js';
import { curl } from '../testing/est-client.js';

const ORG_B = 'org-b';

for (const engine of ENGINES) {
  describe(`device enrollment [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let ownerSecret: string;
    let auditorToken: string;
    let consumerToken: string;
    let tokenB: string;
    let product: string;
    const ssl = new Openssl();
    before(async () => {
      t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 10_000 } });
      ({ token, secret: ownerSecret } = await ownerSession(t));
      auditorToken = (await operatorSession(t, token, 'auditor@example.com', 'auditor')).token;
      consumerToken = await signIn(t, await insertConsumer(t, 'consumer@example.com', STRONG_PASSWORD));
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      product = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token })).body.id;
      ssl.write('ca.pem', t.ca);
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    let serials = 0;
    async function device(as = token): Promise<string> {
      const created = await t.client().post('/api/v1/devices', { serial: `SN-${++serials}`, productId: product }, { token: as });
      assert.equal(created.status, 201, created.text);
      return created.body.id;
    }
    const status = async (id: string) =>
      (await t.platform.db.selectFrom('devices').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    // At the platform clock's time, which the sign-ins moved ahead of the wall clock.
    const verify = (name: string) =>
      ssl.run(['verify', '-attime', String(Math.ceil(t.clock.now() / 1000)), '-CAfile', 'ca.pem', '-untrusted', 'chain.pem', name]);
    async function enrollmentToken(id: string): Promise<string> {
      const res = await t.client().post(`/api/v1/devices/${id}/enrollment-token`, undefined, { token });
      assert.equal(res.status, 201, res.text);
      return res.body.token;
    }
    /** The base64 DER of an openssl CSR, the body of an EST simpleenroll. */
    async function estCsr(name: string, cn: string): Promise<string> {
      await ssl.csr(name, `/CN=${cn}`, P256);
      await ssl.must(['req', '-in', `${name}.csr`, '-outform', 'DER', '-out', `${name}.der`]);
      return (await ssl.must(['base64', '-in', `${name}.der`])).trim();
    }
    let deviceUnderAttack = '';
    /** Like estCsr, with the given key arguments; also keeps the base64 as `name`.der.b64. */
    async function estCsrWith(name: string, keyArgs: string[]): Promise<string> {
      await ssl.csr(name, `/CN=${deviceUnderAttack}`, keyArgs);
      await ssl.must(['req', '-in', `${name}.csr`, '-outform', 'DER', '-out', `${name}.der`]);
      const b64 = (await ssl.must(['base64', '-A', '-in', `${name}.der`])).trim();
      ssl.write(`${name}.der.b64`, b64);
      return b64;
    }
    const simpleenroll = (body: string, bearer?: string) =>
      t.client().post('/.well-known/est/simpleenroll', undefined, {
        raw: body,
        headers: { 'content-type': 'application/pkcs10', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      });

    it('provisions from an openssl CSR at the factory: the certificate verifies with openssl and the device becomes active', async () => {
      const id = await device();
      const csr = await ssl.csr('factory', `/CN=${id}`, P256);
      const res = await t.client().post(`/api/v1/devices/${id}/certificate`, { csr }, { token });
      assert.equal(res.status, 200, res.text);
      ssl.write('chain.pem', res.body.chain);
      ssl.write('factory.pem', res.body.certificate);
      const verified = await verify('factory.pem');
      assert.equal(verified.ok, true, verified.output);
      assert.match(
        await ssl.must(['x509', '-in', 'factory.pem', '-noout', '-subject', '-serial']),
        new RegExp(`CN ?= ?${id}[\\s\\S]*serial=${res.body.serial}`, 'i'),
      );
      assert.ok(Date.parse(res.body.notAfter) > t.clock.now());
      assert.equal(await status(id), 'active');
      assert.equal((await t.platform.audit.query({ action: 'pki.certificate_issued', targetId: res.body.serial })).entries.length, 1);
    });

    it('provisions a batch item by item, reporting a CSR for the wrong device without failing the others', async () => {
      const [a, b] = [await device(), await device()];
      const items = [
        { deviceId: a, csr: await ssl.csr('batch-a', `/CN=${a}`, P256) },
        { deviceId: b, csr: await ssl.csr('batch-b', `/CN=${a}`, P256) },
      ];
      const res = await t.client().post('/api/v1/devices/certificates', { items }, { token });
      assert.equal(res.status, 200, res.text);
      const [ok, refused] = res.body.results;
      assert.equal(ok.deviceId, a);
      ssl.write('batch-a.pem', ok.certificate);
      assert.equal((await verify('batch-a.pem')).ok, true);
      assert.deepEqual([refused.deviceId, refused.error.code], [b, 'pki.identity_mismatch']);
      assert.deepEqual([await status(a), await status(b)], ['active', 'pending']);
    });

    it('enrolls over EST with curl and a one-time token: cacerts and the issued certificate are PKCS#7 openssl reads and verifies', async () => {
      const id = await device();
      const base = `https://localhost:${t.server.port}/.well-known/est`;
      const cacerts = await curl(['--cacert', join(ssl.dir, 'ca.pem'), `${base}/cacerts`]);
      assert.equal(cacerts.status, 200, cacerts.body);
      ssl.write('cacerts.b64', cacerts.body);
      await ssl.must(['base64', '-d', '-A', '-in', 'cacerts.b64', '-out', 'cacerts.p7']);
      const caList = await ssl.must(['pkcs7', '-inform', 'DER', '-in', 'cacerts.p7', '-print_certs', '-out', 'chain.pem']);
      assert.equal(caList, '');
      assert.equal((ssl.read('chain.pem').match(/BEGIN CERTIFICATE/g) ?? []).length, 2);

      ssl.write('est.b64', await estCsr('est', id));
      const enrollment = await enrollmentToken(id);
      const enrolled = await curl([
        '--cacert',
        join(ssl.dir, 'ca.pem'),
        '-H',
        'content-type: application/pkcs10',
        '-H',
        `authorization: Bearer ${enrollment}`,
        '--data-binary',
        `@${join(ssl.dir, 'est.b64')}`,
        `${base}/simpleenroll`,
      ]);
      assert.equal(enrolled.status, 200, enrolled.body);
      ssl.write('est-cert.b64', enrolled.body);
      await ssl.must(['base64', '-d', '-A', '-in', 'est-cert.b64', '-out', 'est-cert.p7']);
      await ssl.must(['pkcs7', '-inform', 'DER', '-in', 'est-cert.p7', '-print_certs', '-out', 'est.pem']);
      const verified = await verify('est.pem');
      assert.equal(verified.ok, true, verified.output);
      assert.match(await ssl.must(['x509', '-in', 'est.pem', '-noout', '-subject']), new RegExp(`CN ?= ?${id}`));
      assert.equal(await status(id), 'active');
      const [created] = (await t.platform.audit.query({ action: 'device.enrollment_token_created', targetId: id })).entries;
      assert.equal(created?.outcome, 'success');
    });

    it('refuses an enrollment token used twice', async () => {
      const id = await device();
      const body = await estCsr('twice', id);
      const enrollment = await enrollmentToken(id);
      assert.equal((await simpleenroll(body, enrollment)).status, 200);
      const again = await simpleenroll(body, enrollment);
      assert.deepEqual([again.status, again.body.error?.code], [401, 'auth.token_invalid']);
    });

    it("refuses a CSR for another device under a device's token, and spends the token", async () => {
      const [a, b] = [await device(), await device()];
      const enrollment = await enrollmentToken(a);
      const res = await simpleenroll(await estCsr('other', b), enrollment);
      assert.deepEqual([res.status, res.body.error?.code], [403, 'pki.identity_mismatch']);
      assert.deepEqual([await status(a), await status(b)], ['pending', 'pending']);
      assert.equal((await simpleenroll(await estCsr('retry', a), enrollment)).status, 401);
    });

    it('refuses EST enrollment without a token, or with a made-up one', async () => {
      const body = await estCsr('anon', 'nobody');
      const none = await simpleenroll(body);
      assert.deepEqual([none.status, none.body.error?.code], [401, 'auth.unauthenticated']);
      assert.equal((await simpleenroll(body, 'bwt_forged')).status, 401);
    });

    it('refuses factory provisioning to consumers and auditors, and hides devices of other organizations', async () => {
      const id = await device();
      const csr = await ssl.csr('refused', `/CN=${id}`, P256);
      for (const as of [consumerToken, auditorToken]) {
        assert.equal((await t.client().post(`/api/v1/devices/${id}/certificate`, { csr }, { token: as })).status, 403);
        assert.equal((await t.client().post(`/api/v1/devices/${id}/enrollment-token`, undefined, { token: as })).status, 403);
      }
      const other = await t.client().post(`/api/v1/devices/${id}/certificate`, { csr }, { token: tokenB });
      assert.deepEqual([other.status, other.body.error?.code], [404, 'resource.not_found']);
      assert.equal((await t.client().post(`/api/v1/devices/${id}/enrollment-token`, undefined, { token: tokenB })).status, 404);
      assert.equal(await status(id), 'pending');
    });

    it('provisions with a factory API key scoped to devices:write, and refuses a key without it', async () => {
      const key = async (scopes: string[]) => {
        assert.equal((await t.client().post('/api/v1/auth/step-up', { code: await totp(ownerSecret, t.clock) }, { token })).status, 200);
        t.clock.advance(30_000);
        const created = await t.client().post('/api/v1/me/api-keys', { name: scopes.join(' '), scopes, expiresInDays: 30 }, { token });
        assert.equal(created.status, 201, created.text);
        return created.body.secret as string;
      };
      const [factory, reader] = [await key(['devices:write']), await key(['devices:read'])];
      const id = await device();
      const csr = await ssl.csr('keyed', `/CN=${id}`, P256);
      assert.equal((await t.client().post(`/api/v1/devices/${id}/certificate`, { csr }, { token: reader })).status, 403);
      const res = await t.client().post(`/api/v1/devices/${id}/certificate`, { csr }, { token: factory });
      assert.equal(res.status, 200, res.text);
      ssl.write('keyed.pem', res.body.certificate);
      assert.equal((await verify('keyed.pem')).ok, true);
      assert.equal(await status(id), 'active');
    });

    it('refuses CSRs with an RSA-1024 key, a secp256k1 key or a bad signature, each with its code, and spends the token every time', async () => {
      const attacks: [string, () => Promise<string>, number, string][] = [
        ['rsa1024', async () => estCsrWith('rsa1024', ['-newkey', 'rsa:1024']), 400, 'pki.weak_key'],
        ['secp256k1', async () => estCsrWith('k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']), 400, 'pki.weak_key'],
        [
          'bad signature',
          async () => {
            await estCsrWith('tampered', P256);
            const der = Buffer.from(ssl.read('tampered.der.b64').trim(), 'base64');
            der[der.length - 3]! ^= 0x01; // inside the ECDSA signature value
            return der.toString('base64');
          },
          400,
          'pki.csr_invalid',
        ],
      ];
      for (const [name, body, code, error] of attacks) {
        const id = await device();
        deviceUnderAttack = id;
        const enrollment = await enrollmentToken(id);
        const res = await simpleenroll(await body(), enrollment);
        assert.deepEqual([res.status, res.body.error?.code], [code, error], name);
        const retry = await simpleenroll(await estCsr(`${name}-retry`.replace(/ /g, '-'), id), enrollment);
        assert.deepEqual([retry.status, retry.body.error?.code], [401, 'auth.token_invalid'], `${name}: the token is spent`);
        assert.equal(await status(id), 'pending');
      }
      const [refusal] = (await t.platform.audit.query({ action: 'pki.certificate_issued', outcome: 'denied', targetId: deviceUnderAttack }))
        .entries;
      assert.equal(refusal?.details.code, 'pki.csr_invalid');
    });

    it('rotates credentials: every certificate revoked (openssl sees it on the CRL), a new token that enrolls, audited; refused to auditors and other organizations', async () => {
      const id = await device();
      const issued = [];
      for (const name of ['rot-1', 'rot-2']) {
        const res = await t.client().post(`/api/v1/devices/${id}/certificate`, { csr: await ssl.csr(name, `/CN=${id}`, P256) }, { token });
        assert.equal(res.status, 200, res.text);
        issued.push(res.body.serial as string);
      }
      assert.equal((await t.client().post(`/api/v1/devices/${id}/credentials/rotate`, {}, { token: auditorToken })).status, 403);
      assert.equal((await t.client().post(`/api/v1/devices/${id}/credentials/rotate`, {}, { token: tokenB })).status, 404);
      assert.equal((await t.client().post(`/api/v1/devices/${id}/credentials/rotate`, { reason: 'whim' }, { token })).status, 400);
      const rotated = await t.client().post(`/api/v1/devices/${id}/credentials/rotate`, { reason: 'keyCompromise' }, { token });
      assert.equal(rotated.status, 200, rotated.text);
      assert.deepEqual([...rotated.body.revoked].sort(), [...issued].sort());
      ssl.write('rot-crl.pem', (await t.client().get('/pki/crl.pem')).text);
      const crl = await ssl.must(['crl', '-in', 'rot-crl.pem', '-noout', '-text']);
      for (const serial of issued) assert.match(crl, new RegExp(`Serial Number: 0*${serial}[\\s\\S]*?Key Compromise`, 'i'));
      for (const serial of issued) {
        const { pem } = await t.platform.db
          .selectFrom('issued_certificates')
          .select('pem')
          .where('serial', '=', serial)
          .executeTakeFirstOrThrow();
        await assert.rejects(t.platform.devices.identity.fromCertificate(new X509Certificate(pem)), /Device authentication failed/);
      }
      const enrolled = await simpleenroll(await estCsr('rot-new', id), rotated.body.token);
      assert.equal(enrolled.status, 200, enrolled.text);
      const [audited] = (await t.platform.audit.query({ action: 'device.credentials_rotated', targetId: id })).entries;
      assert.deepEqual([audited?.details.reason, (audited?.details.revoked as string[]).length], ['keyCompromise', 2]);
      const again = await t.client().post(`/api/v1/devices/${id}/credentials/rotate`, undefined, { token });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.revoked.length, 1, 'the certificate enrolled with the rotation token, superseded by default');
    });

    it('refuses an enrollment token after its 24 hours (last: moving the clock a day ends every session)', async () => {
      const id = await device();
      const enrollment = await enrollmentToken(id);
      t.clock.advance(24 * 3_600_000 + 1);
      const late = await simpleenroll(await estCsr('late', id), enrollment);
      assert.deepEqual([late.status, late.body.error?.code], [401, 'auth.token_invalid']);
      assert.equal(await status(id), 'pending');
    });
  });
}
