import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { certificateOf, estCsr, estPost, opensslCa, opensslLeaf } from '../testing/est-client.js';
import type { HttpClient } from '../testing/http.js';
import { mosquittoClient } from '../testing/mqtt.js';
import { Openssl } from '../testing/openssl.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';
import { createToken, deriveDeviceKey, registrationResource } from './sas.js';

for (const engine of ENGINES) {
  describe(`just-in-time provisioning through manufacturer CAs [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let owner: TestUser;
    let token: string;
    let port: number;
    const ssl = new Openssl();
    before(async () => {
      ({ t, client, owner, token } = await startOwnerPlatform(engine, { mqtt: { port: 0 } }));
      port = t.server.mqtt!.port;
      ssl.write('ca.pem', t.ca);
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    let products = 0;
    const product = async () => {
      const created = await client.post('/api/v1/products', { name: `JIT product ${++products}` }, { token });
      assert.equal(created.status, 201, created.text);
      return created.body.id as string;
    };
    /** Signs a fresh challenge with `signer`'s key (default: the CA's own) as `openssl dgst` would. */
    const proof = async (signer: string) => {
      const challenge = await client.post('/api/v1/pki/manufacturer-cas/challenge', undefined, { token });
      assert.equal(challenge.status, 201, challenge.text);
      ssl.write(`${signer}-challenge.txt`, challenge.body.challenge);
      await ssl.must(['dgst', '-sha256', '-sign', `${signer}.key`, '-out', `${signer}-sig.bin`, `${signer}-challenge.txt`]);
      return {
        challenge: challenge.body.challenge as string,
        signature: readFileSync(join(ssl.dir, `${signer}-sig.bin`)).toString('base64'),
      };
    };
    const registerCa = async (ca: string, productId: string, extra: Record<string, unknown> = {}, signer = ca) => {
      await stepUp(t, owner, token, client);
      return client.post(
        '/api/v1/pki/manufacturer-cas',
        { name: ca, productId, certificate: ssl.read(`${ca}.pem`), ...(await proof(signer)), ...extra },
        { token },
      );
    };
    const trusted = async (ca: string, extra: Record<string, unknown> = {}) => {
      const productId = await product();
      await opensslCa(ssl, ca, `/CN=${ca} Factory CA/O=Acme`);
      const res = await registerCa(ca, productId, extra);
      assert.equal(res.status, 201, res.text);
      return { productId, caId: res.body.id as string };
    };
    const enroll = async (leaf: string) => {
      // Refusals are audited once per code, address and minute: each attempt gets its own minute.
      t.clock.advance(61_000);
      return estPost(t.server.port, t.ca, 'simpleenroll', await estCsr(ssl, `${leaf}-op`, '/'), {
        cert: ssl.read(`${leaf}.pem`),
        key: ssl.read(`${leaf}.key`),
      });
    };
    const connect = async (leaf: string, clientId: string) => {
      t.clock.advance(61_000);
      return mosquittoClient('mosquitto_pub', { port, dir: ssl.dir, name: leaf, deviceId: clientId }, [
        '-t',
        `d/${clientId}/telemetry`,
        '-m',
        '{"values":{"t":1}}',
      ]);
    };
    const device = (id: string) =>
      t.platform.db.selectFrom('devices').select(['status', 'product_id']).where('id', '=', id).executeTakeFirst();
    const lastRefusal = async () => (await t.platform.audit.query({ action: 'device.jit_refused' })).entries[0]?.details;

    it('refuses to register a manufacturer CA without proof of possession of its key', async () => {
      const productId = await product();
      await opensslCa(ssl, 'pop', '/CN=PoP CA');
      await opensslCa(ssl, 'thief', '/CN=Thief CA');
      t.clock.advance(10 * 60_000);
      const stale = await client.post(
        '/api/v1/pki/manufacturer-cas',
        { name: 'pop', productId, certificate: ssl.read('pop.pem'), ...(await proof('pop')) },
        { token },
      );
      assert.deepEqual([stale.status, stale.body.error?.code], [403, 'auth.step_up_required']);
      const signedByOther = await registerCa('pop', productId, {}, 'thief');
      assert.deepEqual([signedByOther.status, signedByOther.body.error?.code], [400, 'pki.manufacturer_ca_proof_invalid']);
      await stepUp(t, owner, token, client);
      const { challenge } = await proof('pop');
      const garbage = await client.post(
        '/api/v1/pki/manufacturer-cas',
        {
          name: 'pop',
          productId,
          certificate: ssl.read('pop.pem'),
          challenge,
          signature: Buffer.from('not a signature').toString('base64'),
        },
        { token },
      );
      assert.deepEqual([garbage.status, garbage.body.error?.code], [400, 'pki.manufacturer_ca_proof_invalid']);
      // A valid signature over a challenge already spent (or never issued) proves nothing either.
      await stepUp(t, owner, token, client);
      const spent = await proof('pop');
      const body = { name: 'pop', productId, certificate: ssl.read('pop.pem'), ...spent };
      assert.equal((await client.post('/api/v1/pki/manufacturer-cas', body, { token })).status, 201);
      await stepUp(t, owner, token, client);
      const replay = await client.post(
        '/api/v1/pki/manufacturer-cas',
        { name: 'again', productId, certificate: ssl.read('pop.pem'), ...spent },
        { token },
      );
      assert.deepEqual([replay.status, replay.body.error?.code], [400, 'pki.manufacturer_ca_proof_invalid']);
      const listed = await client.get('/api/v1/pki/manufacturer-cas', { token });
      assert.deepEqual(
        listed.body.manufacturerCas.map((c: { name: string }) => c.name),
        ['pop'],
      );
    });

    it('registers a device on its first EST request: a platform certificate naming the ID from its CN, the same record every time', async () => {
      const { productId, caId } = await trusted('est-ca');
      await opensslLeaf(ssl, 'est-ca', 'est1', '/CN=EST-0001/O=Acme');
      const first = await enroll('est1');
      assert.equal(first.status, 200, first.text);
      const issued = new X509Certificate(await certificateOf(ssl, 'est1-issued', first.text));
      assert.equal(issued.subject, 'CN=EST-0001');
      assert.deepEqual(await device('EST-0001'), { status: 'active', product_id: productId });
      assert.equal((await t.platform.devices.identity.fromCertificate(issued)).deviceId, 'EST-0001');
      const [registered] = (await t.platform.audit.query({ action: 'device.jit_registered', targetId: 'EST-0001' })).entries;
      assert.equal(registered?.details.manufacturerCaId, caId);
      // The same factory certificate again (the device lost the answer): the same device, no second record.
      const again = await enroll('est1');
      assert.equal(again.status, 200, again.text);
      assert.equal((await t.platform.audit.query({ action: 'device.jit_registered', targetId: 'EST-0001' })).entries.length, 1);
      const listed = await client.get('/api/v1/pki/manufacturer-cas', { token });
      assert.equal(listed.body.manufacturerCas.find((c: { id: string }) => c.id === caId).devicesRegistered, 1);
    });

    it('registers a device on its first MQTT connect (mosquitto_pub with its factory certificate) and lets it publish', async () => {
      await trusted('mqtt-ca');
      await opensslLeaf(ssl, 'mqtt-ca', 'm1', '/CN=MQTT-0001');
      const first = await connect('m1', 'MQTT-0001');
      assert.equal(first.code, 0, first.output);
      assert.equal((await device('MQTT-0001'))?.status, 'active');
      const second = await connect('m1', 'MQTT-0001');
      assert.equal(second.code, 0, second.output);
      assert.equal(await t.platform.telemetry.store.count('MQTT-0001'), 2);
    });

    it('refuses a certificate from an unregistered CA on both doors, with its code, audited', async () => {
      await opensslCa(ssl, 'rogue', '/CN=Rogue CA');
      await opensslLeaf(ssl, 'rogue', 'r1', '/CN=ROGUE-1');
      const mqtt = await connect('r1', 'ROGUE-1');
      assert.notEqual(mqtt.code, 0, 'the broker refuses the connect');
      assert.equal((await lastRefusal())?.code, 'jit.unknown_ca');
      const est = await enroll('r1');
      assert.deepEqual([est.status, est.error?.code], [401, 'device.auth_failed']);
      const [bootstrapRefusal] = (await t.platform.audit.query({ action: 'device.bootstrap_enrolled', outcome: 'denied' })).entries;
      assert.equal(bootstrapRefusal?.details.reason, 'unknown_issuer');
      assert.equal(await device('ROGUE-1'), undefined);
    });

    it('refuses new devices of a revoked CA; revoking with quarantine quarantines those it registered', async () => {
      const { caId } = await trusted('rev-ca');
      await opensslLeaf(ssl, 'rev-ca', 'rv1', '/CN=REV-0001');
      await opensslLeaf(ssl, 'rev-ca', 'rv2', '/CN=REV-0002');
      assert.equal((await enroll('rv1')).status, 200);
      await stepUp(t, owner, token, client);
      const revoked = await client.post(`/api/v1/pki/manufacturer-cas/${caId}/revoke`, { quarantine: true }, { token });
      assert.deepEqual([revoked.status, revoked.body], [200, { quarantined: 1 }]);
      assert.equal((await device('REV-0001'))?.status, 'quarantined');
      const refused = await enroll('rv2');
      assert.deepEqual([refused.status, refused.error?.code], [403, 'jit.ca_revoked']);
      assert.equal((await lastRefusal())?.code, 'jit.ca_revoked');
      const mqtt = await connect('rv2', 'REV-0002');
      assert.notEqual(mqtt.code, 0);
      assert.equal(await device('REV-0002'), undefined);
      const twice = await client.post(`/api/v1/pki/manufacturer-cas/${caId}/revoke`, {}, { token });
      assert.deepEqual([twice.status, twice.body.error?.code], [409, 'pki.manufacturer_ca_revoked']);
    });

    it('refuses a serial outside the allow-list (patterns and an imported list), audited', async () => {
      const { productId } = await trusted('allow-ca');
      const policy = await client.put(`/api/v1/products/${productId}/enrollment-policy`, { serialPatterns: ['ACME-2026-*'] }, { token });
      assert.equal(policy.status, 200, policy.text);
      const imported = await client.post(
        `/api/v1/products/${productId}/enrollment-policy/serials`,
        { serials: ['LISTED-7', 'LISTED-8'] },
        { token },
      );
      assert.deepEqual([imported.status, imported.body.serialsListed, imported.body.serialList], [200, 2, true]);
      for (const [leaf, cn] of <[string, string][]>[
        ['al1', 'ACME-2026-0001'],
        ['al2', 'LISTED-7'],
        ['al3', 'ACME-2025-0001'],
      ])
        await opensslLeaf(ssl, 'allow-ca', leaf, `/CN=${cn}`);
      assert.equal((await enroll('al1')).status, 200);
      assert.equal((await enroll('al2')).status, 200);
      const outside = await enroll('al3');
      assert.deepEqual([outside.status, outside.error?.code], [403, 'jit.serial_not_allowed']);
      const audited = await lastRefusal();
      assert.equal(audited?.code, 'jit.serial_not_allowed');
      assert.match(String((audited?.certificate as { subject: string }).subject), /ACME-2025-0001/);
      assert.equal(await device('ACME-2025-0001'), undefined);
      const mqtt = await connect('al3', 'ACME-2025-0001');
      assert.notEqual(mqtt.code, 0);
      assert.equal(await device('ACME-2025-0001'), undefined);
    });

    it('refuses a device connecting from outside the allowed address ranges', async () => {
      const { productId } = await trusted('net-ca');
      await opensslLeaf(ssl, 'net-ca', 'n1', '/CN=NET-0001');
      const set = await client.put(
        `/api/v1/products/${productId}/enrollment-policy`,
        { sourceCidrs: ['203.0.113.0/24', '2001:db8::/32'] },
        { token },
      );
      assert.equal(set.status, 200, set.text);
      const est = await enroll('n1');
      assert.deepEqual([est.status, est.error?.code], [403, 'jit.address_not_allowed']);
      const mqtt = await connect('n1', 'NET-0001');
      assert.notEqual(mqtt.code, 0);
      assert.equal((await lastRefusal())?.code, 'jit.address_not_allowed');
      assert.equal(await device('NET-0001'), undefined);
      const bad = await client.put(`/api/v1/products/${productId}/enrollment-policy`, { sourceCidrs: ['10.0.0.0/33'] }, { token });
      assert.deepEqual([bad.status, bad.body.error?.code], [400, 'enrollment_policy.invalid']);
      assert.equal(
        (await client.put(`/api/v1/products/${productId}/enrollment-policy`, { sourceCidrs: ['127.0.0.0/8', '::1/128'] }, { token }))
          .status,
        200,
      );
      assert.equal((await enroll('n1')).status, 200);
    });

    it('refuses devices over the daily quota, leaving no row for them', async () => {
      const { productId } = await trusted('quota-ca');
      assert.equal((await client.put(`/api/v1/products/${productId}/enrollment-policy`, { dailyQuota: 2 }, { token })).status, 200);
      for (const n of [1, 2, 3]) await opensslLeaf(ssl, 'quota-ca', `q${n}`, `/CN=QUOTA-000${n}`);
      assert.equal((await enroll('q1')).status, 200);
      assert.equal((await enroll('q2')).status, 200);
      const over = await enroll('q3');
      assert.deepEqual([over.status, over.error?.code], [429, 'jit.quota_exceeded']);
      assert.equal((await connect('q3', 'QUOTA-0003')).code !== 0, true);
      assert.equal((await lastRefusal())?.code, 'jit.quota_exceeded');
      assert.equal(await device('QUOTA-0003'), undefined);
      const view = await client.get(`/api/v1/products/${productId}/enrollment-policy`, { token });
      assert.deepEqual([view.body.dailyQuota, view.body.registrationsToday], [2, 2]);
      // A known device is no new registration: it keeps working at the quota.
      assert.equal((await enroll('q1')).status, 200);
    });

    it('holds a device pending when the CA says so: certificate issued, connects refused until an operator activates it', async () => {
      await trusted('hold-ca', { activation: 'pending', deviceIdPrefix: 'hold-' });
      await opensslLeaf(ssl, 'hold-ca', 'h1', '/CN=0001');
      const est = await enroll('h1');
      assert.equal(est.status, 200, est.text);
      assert.equal((await device('hold-0001'))?.status, 'pending');
      const mqtt = await connect('h1', 'hold-0001');
      assert.notEqual(mqtt.code, 0);
      assert.equal((await lastRefusal())?.code, 'jit.pending_approval');
      const activated = await client.post('/api/v1/devices/hold-0001/activate', undefined, { token });
      assert.equal(activated.status, 200, activated.text);
      const after = await connect('h1', 'hold-0001');
      assert.equal(after.code, 0, after.output);
    });

    it('takes the device ID from the subject serialNumber or the key hash when the CA says so', async () => {
      await trusted('sn-ca', { deviceIdFrom: 'serial_number' });
      await opensslLeaf(ssl, 'sn-ca', 's1', '/CN=Sensor/serialNumber=SN-42');
      assert.equal((await enroll('s1')).status, 200);
      assert.equal((await device('SN-42'))?.status, 'active');
      await trusted('kh-ca', { deviceIdFrom: 'key_sha256', deviceIdPrefix: 'k-' });
      const leaf = await opensslLeaf(ssl, 'kh-ca', 'k1', '/CN=anything');
      const keyHash = (await import('node:crypto'))
        .createHash('sha256')
        .update(new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' }))
        .digest('hex');
      assert.equal((await enroll('k1')).status, 200);
      assert.equal((await device(`k-${keyHash}`))?.status, 'active');
    });

    it("holds an enrollment group's self-registrations to its allow-list: serial pattern, address range, daily quota", async () => {
      const productId = await product();
      await stepUp(t, owner, token, client); // a group's key is a device credential: creating one needs a step-up
      const group = (await client.post('/api/v1/enrollment-groups', { name: 'jit-line', productId }, { token })).body;
      const set = await client.put(
        `/api/v1/enrollment-groups/${group.id}/enrollment-policy`,
        { serialPatterns: ['GRP-?'], dailyQuota: 1 },
        { token },
      );
      assert.equal(set.status, 200, set.text);
      const register = (serial: string) => {
        t.clock.advance(61_000);
        return client.post(
          '/device/v1/registrations',
          { groupId: group.id, registrationId: serial },
          {
            headers: {
              authorization: createToken(
                deriveDeviceKey(group.key, serial),
                registrationResource(group.id, serial),
                Math.floor(t.clock.now() / 1000) + 600,
              ),
            },
          },
        );
      };
      assert.equal((await register('GRP-1')).status, 200);
      const outside = await register('OTHER-1');
      assert.deepEqual([outside.status, outside.body.error?.code], [403, 'jit.serial_not_allowed']);
      const over = await register('GRP-2');
      assert.deepEqual([over.status, over.body.error?.code], [429, 'jit.quota_exceeded']);
      assert.equal((await register('GRP-1')).status, 200, 'a registered device registers again at the quota');
      const refusals = (await t.platform.audit.query({ action: 'device.registration_refused' })).entries.map((e) => e.details.reason);
      assert.deepEqual(refusals.slice(0, 2), ['jit.quota_exceeded', 'jit.serial_not_allowed']);
      await client.put(
        `/api/v1/enrollment-groups/${group.id}/enrollment-policy`,
        { sourceCidrs: ['192.0.2.0/24'], dailyQuota: null },
        { token },
      );
      const elsewhere = await register('GRP-3');
      assert.deepEqual([elsewhere.status, elsewhere.body.error?.code], [403, 'jit.address_not_allowed']);
      const serials = await t.platform.db.selectFrom('devices').select('serial').where('product_id', '=', productId).execute();
      assert.deepEqual(
        serials.map((d) => d.serial),
        ['GRP-1'],
      );
    });

    it('audits a flood of refusals once per code, address and minute, with the count of the rest', async () => {
      await opensslCa(ssl, 'flood', '/CN=Flood CA');
      await opensslLeaf(ssl, 'flood', 'f1', '/CN=FLOOD-1');
      t.clock.advance(61_000);
      const before = (await t.platform.audit.query({ action: 'device.jit_refused', limit: 500 })).entries.length;
      const cert = new X509Certificate(ssl.read('f1.pem'));
      for (let i = 0; i < 20; i++)
        await assert.rejects(t.platform.devices.jit.resolve(cert, '198.51.100.9', 'mqtt'), { code: 'jit.unknown_ca' });
      const during = (await t.platform.audit.query({ action: 'device.jit_refused', limit: 500 })).entries;
      assert.equal(during.length, before + 1);
      t.clock.advance(61_000);
      await assert.rejects(t.platform.devices.jit.resolve(cert, '198.51.100.9', 'mqtt'), { code: 'jit.unknown_ca' });
      const [latest] = (await t.platform.audit.query({ action: 'device.jit_refused' })).entries;
      assert.equal(latest?.details.refusalsNotRecorded, 19);
      assert.equal(latest?.sourceIp, '198.51.100.9');
      // The unknown issuer was remembered; registering its CA on this node is seen at once.
      assert.equal((await registerCa('flood', await product())).status, 201);
      const registered = await t.platform.devices.jit.resolve(cert, '198.51.100.9', 'mqtt');
      assert.deepEqual([registered.created, registered.device.deviceId], [true, 'FLOOD-1']);
    });
  });
}
