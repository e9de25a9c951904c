/**
 * Just-in-time provisioning at scale and under load. Device certificates: every device has its own
 * P-256 key; most are made in-process (node:crypto keys, the certificate's DER put together by
 * testing/der.ts and signed with the openssl-made manufacturer CA's key), a sample with the openssl CLI (its own key and
 * CSR each, signed by `openssl x509 -req`), so both kinds of encoding go through the broker. Each
 * device connects once with mosquitto_pub over mutual TLS (12 at once, started by one xargs),
 * registers and publishes one reading.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { sequenceElements } from '../pki/der.js';
import { stepUp, type TestUser } from '../testing/accounts.js';
import { der, distinguishedName, SEQUENCE, ECDSA_WITH_SHA256, signedEcdsa, utcTime } from '../testing/der.js';
import { ENGINES } from '../testing/engines.js';
import { estCsr, estPost, opensslCa, opensslLeaf } from '../testing/est-client.js';
import type { HttpClient } from '../testing/http.js';
import { mosquittoClient, mosquittoClients } from '../testing/mqtt.js';
import { Openssl } from '../testing/openssl.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';

/**
 * Device certificates issued in-process by the openssl CA `ca` (its PKCS#8 key in `ca`.key), each with
 * its own key: X.509 v3 without extensions, subject in PrintableStrings, as @peculiar/x509's
 * generator made them at several times the CPU (for 1,000 devices, seconds of the file's run).
 */
function issueInProcess(ssl: Openssl, ca: string, names: string[]): void {
  const caTbs = sequenceElements(new X509Certificate(ssl.read(`${ca}.pem`)).raw)[0]!;
  const caFields = sequenceElements(caTbs.bytes);
  const issuer = caFields[caFields[0]!.tag === 0xa0 ? 5 : 4]!.bytes;
  const caKey = createPrivateKey(ssl.read(`${ca}.key`));
  const now = Date.now();
  for (const [i, name] of names.entries()) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const tbs = der(
      SEQUENCE,
      der(0xa0, der(0x02, Buffer.from([2]))),
      der(0x02, Buffer.from((0x100000 + i).toString(16), 'hex')), // 0x100000…: six hex digits, the first below 8
      ECDSA_WITH_SHA256,
      issuer,
      der(SEQUENCE, utcTime(now - 86_400_000), utcTime(now + 365 * 86_400_000)),
      distinguishedName([
        ['CN', name],
        ['O', 'Acme'],
      ]),
      publicKey.export({ type: 'spki', format: 'der' }),
    );
    ssl.write(`${name}.pem`, new X509Certificate(signedEcdsa(tbs, caKey)).toString());
    ssl.write(`${name}.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  }
}

/** Runs `work` over `items` with at most `width` at once. */
async function pool<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

async function registerCa(
  t: TestPlatform,
  client: HttpClient,
  owner: TestUser,
  token: string,
  ssl: Openssl,
  ca: string,
  productId: string,
) {
  const challenge = await client.post('/api/v1/pki/manufacturer-cas/challenge', undefined, { token });
  ssl.write(`${ca}-challenge.txt`, challenge.body.challenge);
  await ssl.must(['dgst', '-sha256', '-sign', `${ca}.key`, '-out', `${ca}-sig.bin`, `${ca}-challenge.txt`]);
  await stepUp(t, owner, token, client);
  const res = await client.post(
    '/api/v1/pki/manufacturer-cas',
    {
      name: ca,
      productId,
      certificate: ssl.read(`${ca}.pem`),
      challenge: challenge.body.challenge,
      signature: readFileSync(join(ssl.dir, `${ca}-sig.bin`)).toString('base64'),
    },
    { token },
  );
  assert.equal(res.status, 201, res.text);
}

const count = async (t: TestPlatform, productId: string) =>
  Number(
    (
      await t.platform.db
        .selectFrom('devices')
        .select((eb) => eb.fn.countAll<string | number>().as('n'))
        .where('product_id', '=', productId)
        .executeTakeFirstOrThrow()
    ).n,
  );

for (const engine of ENGINES) {
  const devices = engine.engine === 'sqlite' ? 1000 : 200;
  const sample = 20;
  describe(`just-in-time provisioning at scale [${engine.engine}, ${devices} devices]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let owner: TestUser;
    let token: string;
    let productId: string;
    const ssl = new Openssl();
    before(async () => {
      ({ t, client, owner, token } = await startOwnerPlatform(engine, {
        mqtt: { port: 0, jitRegistrationsPerSecond: 5000, jitConcurrency: 16 },
      }));
      ssl.write('ca.pem', t.ca);
      productId = (await client.post('/api/v1/products', { name: 'Fleet' }, { token })).body.id;
      await opensslCa(ssl, 'fleet', '/CN=Fleet Factory CA/O=Acme');
      await registerCa(t, client, owner, token, ssl, 'fleet', productId);
      const policy = await client.put(`/api/v1/products/${productId}/enrollment-policy`, { dailyQuota: devices }, { token });
      assert.equal(policy.status, 200, policy.text);
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    it(`registers ${devices} devices (${sample} with openssl-made keys and certificates) as each connects with mosquitto_pub, then holds at the quota`, async () => {
      const names = Array.from({ length: devices }, (_, i) => `FLEET-${String(i).padStart(5, '0')}`);
      const started = Date.now();
      // One at a time: openssl keeps the CA's next serial in one file (-CAcreateserial).
      await pool(names.slice(0, sample), 1, (name) => opensslLeaf(ssl, 'fleet', name, `/CN=${name}/O=Acme`));
      issueInProcess(ssl, 'fleet', names.slice(sample));
      const generated = Date.now();
      const exits = await mosquittoClients(
        'mosquitto_pub',
        names.map((name) => ({ port: t.server.mqtt!.port, dir: ssl.dir, name, deviceId: name })),
        (device) => ['-t', `d/${device.deviceId}/telemetry`, '-m', '{"values":{"boot":1}}'],
        12,
      );
      const connected = Date.now();
      const failed = exits.map((e, i) => [names[i], e] as const).filter(([, e]) => e.code !== 0);
      assert.deepEqual(failed.slice(0, 3), [], `${failed.length} devices failed`);
      assert.equal(await count(t, productId), devices);
      for (const name of [names[0]!, names[sample - 1]!, names[sample]!, names[devices - 1]!])
        assert.equal(await t.platform.telemetry.store.count(name), 1, name);
      const registered = await t.platform.db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<string | number>().as('n'))
        .where('action', '=', 'device.jit_registered')
        .executeTakeFirstOrThrow();
      assert.equal(Number(registered.n), devices);
      console.log(
        `[${engine.engine}] ${devices} device certificates in ${generated - started} ms; ${devices} JIT connects with mosquitto_pub (12 at once) in ${connected - generated} ms`,
      );

      // The quota is reached: one more new device is refused and leaves no row. (The platform clock
      // stood still while the connects took real time: bring it up to the new certificate's notBefore,
      // once openssl has dated it: on a loaded machine making it takes more than a second.)
      await opensslLeaf(ssl, 'fleet', 'one-more', '/CN=FLEET-EXTRA');
      t.clock.set(Math.max(t.clock.now(), Date.now() + 1000));
      const extra = await mosquittoClient(
        'mosquitto_pub',
        { port: t.server.mqtt!.port, dir: ssl.dir, name: 'one-more', deviceId: 'FLEET-EXTRA' },
        ['-t', 'd/FLEET-EXTRA/telemetry', '-m', '{}'],
      );
      assert.notEqual(extra.code, 0);
      assert.equal(await count(t, productId), devices);
      const [refusal] = (await t.platform.audit.query({ action: 'device.jit_refused' })).entries;
      assert.equal(refusal?.details.code, 'jit.quota_exceeded');
    });
  });

  describe(`just-in-time provisioning is bounded per node [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let client: HttpClient;
    let owner: TestUser;
    let token: string;
    const ssl = new Openssl();
    before(async () => {
      ({ t, client, owner, token } = await startOwnerPlatform(engine, {
        mqtt: { port: 0, jitRegistrationsPerSecond: 2, jitConcurrency: 1 },
      }));
      ssl.write('ca.pem', t.ca);
      const productId = (await client.post('/api/v1/products', { name: 'Burst' }, { token })).body.id;
      await opensslCa(ssl, 'burst', '/CN=Burst Factory CA');
      await registerCa(t, client, owner, token, ssl, 'burst', productId);
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    it('refuses a burst of new devices beyond its rate at once (jit.busy), while a registered device connects as usual', async () => {
      const names = Array.from({ length: 30 }, (_, i) => `BURST-${i}`);
      issueInProcess(ssl, 'burst', [...names, 'KNOWN-1']);
      // KNOWN-1 registers first, then waits out the rate.
      const known = () =>
        mosquittoClient('mosquitto_pub', { port: t.server.mqtt!.port, dir: ssl.dir, name: 'KNOWN-1', deviceId: 'KNOWN-1' }, [
          '-t',
          'd/KNOWN-1/telemetry',
          '-m',
          '{}',
        ]);
      assert.equal((await known()).code, 0);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const csr = await estCsr(ssl, 'burst-op', '/');
      const started = Date.now();
      const burst = Promise.all(
        names.map((name) =>
          estPost(t.server.port, t.ca, 'simpleenroll', csr, { cert: ssl.read(`${name}.pem`), key: ssl.read(`${name}.key`) }),
        ),
      );
      const knownAgain = await known();
      const knownMs = Date.now() - started;
      const answers = await burst;
      const seconds = (Date.now() - started) / 1000;
      assert.equal(knownAgain.code, 0, knownAgain.output);
      const codes = answers.map((a) => (a.status === 200 ? 'ok' : a.error?.code));
      const busy = codes.filter((c) => c === 'jit.busy').length;
      const ok = codes.filter((c) => c === 'ok').length;
      // The bucket holds 2 and refills 2 a second: no more can register in the time the burst took.
      assert.ok(ok >= 1 && ok <= 2 + Math.ceil(2 * seconds), `registered ${ok} of 30 in ${seconds} s at 2/s: ${codes.join(',')}`);
      assert.ok(busy >= 1, codes.join(','));
      assert.equal(busy + ok, 30, codes.join(','));
      assert.ok(answers.every((a) => a.status === 200 || a.status === 503));
      console.log(
        `[${engine.engine}] burst of 30 new devices: ${ok} registered, ${busy} refused jit.busy in ${seconds} s; a registered device connected in ${knownMs} ms meanwhile`,
      );
    });
  });
}
