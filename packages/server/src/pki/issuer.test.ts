import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createIssuingCa, createRootCa } from './ca.js';
import fc from 'fast-check';
import { CertificateIssuer, deviceUri, verifiedCsr } from './issuer.js';
import { makeCsr } from '../testing/devices.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { BulwarkError } from '../errors.js';

describe('device certificate issuance from CSRs', () => {
  const ssl = new Openssl();
  let issuer: CertificateIssuer;
  const now = new Date();

  before(async () => {
    const root = await createRootCa('CN=Test Root CA', now);
    const device = await createIssuingCa(root, 'CN=Test Device Issuing CA', now);
    ssl.write('root.pem', root.cert.toString('pem'));
    ssl.write('issuing.pem', device.cert.toString('pem'));
    issuer = await CertificateIssuer.create(device.cert.toString('pem'), device.signer, { crlUrl: 'https://bulwark.example/pki/crl.pem' });
  });
  after(() => ssl.close());

  async function refusal(deviceId: string, csr: string): Promise<string> {
    try {
      await issuer.issueDeviceCertificate(deviceId, csr, now);
    } catch (error) {
      assert.ok(error instanceof BulwarkError, String(error));
      return error.code;
    }
    assert.fail('the CSR was accepted');
  }

  it('issues from an openssl P-256 CSR a certificate openssl verifies against the root through the issuing CA', async () => {
    const csr = await ssl.csr('dev1', '/CN=dev-001', P256);
    assert.match(await ssl.must(['req', '-in', 'dev1.csr', '-verify', '-noout']), /verify OK/i);
    const cert = await issuer.issueDeviceCertificate('dev-001', csr, now);
    ssl.write('dev1.pem', cert.pem);
    assert.match(
      await ssl.must(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'dev1.pem']),
      /dev1.pem: OK/,
    );
    // The certificate matches the key openssl generated.
    const pub = (k: string[]) => ssl.must(k);
    assert.equal(await pub(['x509', '-in', 'dev1.pem', '-noout', '-pubkey']), await pub(['pkey', '-in', 'dev1.key', '-pubout']));
  });

  it('applies the device profile: CN and URI SAN carry the device ID, clientAuth, digitalSignature, CA:FALSE, AKI/SKI, CRL URL, 128-bit serial, one year', async () => {
    const cert = await issuer.issueDeviceCertificate('dev-002', await ssl.csr('dev2', '/CN=dev-002', P256), now);
    const text = await ssl.must(['x509', '-noout', '-text', '-in', ssl.write('dev2.pem', cert.pem)]);
    assert.match(text, /Subject: CN ?= ?dev-002/);
    assert.match(text, /URI:urn:bulwark:device:dev-002/);
    assert.match(text, /TLS Web Client Authentication/);
    assert.doesNotMatch(text, /TLS Web Server Authentication/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.match(text, /URI:https:\/\/bulwark\.example\/pki\/crl\.pem/);
    assert.equal(cert.serial.length, 32);
    assert.ok(parseInt(cert.serial.slice(0, 2), 16) < 0x80 && cert.serial.slice(0, 2) !== '00');
    const x = new X509Certificate(cert.pem);
    assert.equal(x.serialNumber.toLowerCase(), cert.serial);
    assert.equal(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000), 365);
    assert.equal(x.fingerprint256.replace(/:/g, '').toLowerCase(), cert.fingerprintSha256);
  });

  it('accepts P-384, Ed25519 and RSA-2048 keys and a CSR naming the device by URI SAN only', async () => {
    for (const [name, args] of [
      ['p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
      ['ed', ['-newkey', 'ed25519']],
      ['rsa', ['-newkey', 'rsa:2048']],
    ] as const) {
      const cert = await issuer.issueDeviceCertificate(`dev-${name}`, await ssl.csr(name, `/CN=dev-${name}`, [...args]), now);
      assert.match(
        await ssl.must(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', ssl.write(`${name}.pem`, cert.pem)]),
        /OK/,
      );
    }
    const sanOnly = await ssl.csr('san', '/O=Acme', P256, ['-addext', `subjectAltName=URI:${deviceUri('dev-san')}`]);
    assert.equal((await issuer.issueDeviceCertificate('dev-san', sanOnly, now)).subject, 'CN=dev-san');
  });

  it('refuses a CSR whose signature does not verify (one byte flipped)', async () => {
    const csr = await ssl.csr('bad', '/CN=dev-bad', P256);
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0x01; // inside the signature value
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    // openssl 3.0 exits 0 here but says so: the tampered request is refused by openssl too.
    assert.match((await ssl.run(['req', '-in', ssl.write('tampered.csr', tampered), '-verify', '-noout'])).output, /verify failure/);
    assert.equal(await refusal('dev-bad', tampered), 'pki.csr_invalid');
    assert.equal(await refusal('dev-bad', 'not a csr'), 'pki.csr_invalid');
  });

  it('refuses weak keys: RSA-1024 and the secp256k1 curve', async () => {
    assert.equal(await refusal('dev-rsa1024', await ssl.csr('rsa1024', '/CN=dev-rsa1024', ['-newkey', 'rsa:1024'])), 'pki.weak_key');
    assert.equal(
      await refusal('dev-k1', await ssl.csr('k1', '/CN=dev-k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'])),
      'pki.weak_key',
    );
  });

  it("refuses a CSR naming another device's ID in its subject or SAN", async () => {
    assert.equal(await refusal('dev-mine', await ssl.csr('other', '/CN=dev-victim', P256)), 'pki.identity_mismatch');
    const san = await ssl.csr('othersan', '/CN=dev-mine', P256, ['-addext', `subjectAltName=URI:${deviceUri('dev-victim')}`]);
    assert.equal(await refusal('dev-mine', san), 'pki.identity_mismatch');
    const dns = await ssl.csr('otherdns', '/CN=dev-mine', P256, ['-addext', 'subjectAltName=DNS:dev-victim']);
    assert.equal(await refusal('dev-mine', dns), 'pki.identity_mismatch');
  });

  it('refuses a device ID that cannot be carried in a certificate name', async () => {
    assert.equal(await refusal('dev/../x', await ssl.csr('weird', '/O=x', P256)), 'pki.device_id_invalid');
  });
});

describe('CSR parsing under fuzzing (fast-check)', () => {
  it('answers every mutation of a good CSR (bytes flipped, cut, appended; as PEM and as DER) with a PKI refusal or a good CSR, never another error', async () => {
    const { csr } = await makeCsr('fuzz-device');
    const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 8 }),
      pem: fc.boolean(),
    });
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async ({ flips, cut, tail, pem }) => {
        let bytes = Buffer.from(der);
        for (const [at, byte] of flips) bytes[at % bytes.length] = byte;
        if (cut !== undefined) bytes = bytes.subarray(0, cut % bytes.length);
        bytes = Buffer.concat([bytes, tail]);
        const text = pem
          ? `-----BEGIN CERTIFICATE REQUEST-----\n${bytes.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
          : bytes.toString('base64');
        try {
          await verifiedCsr(text);
          accepted++;
        } catch (error) {
          assert.ok(error instanceof BulwarkError, `${bytes.toString('hex').slice(0, 120)}: ${String(error)}`);
          assert.match(error.code, /^pki\.(csr_invalid|weak_key)$/);
        }
      }),
      { numRuns: 1500 },
    );
    // Most mutations break the signature; only those that change nothing signed get through.
    assert.ok(accepted < 1500 / 2, `${accepted} mutated CSRs accepted`);
  });
});
