/**
 * CA keys on a PKCS#11 token (SoftHSM, one token for this file): `bulwark init` with keys.pkcs11
 * configured generates the root and issuing CA keys on the token, the platform issues and revokes
 * through it, and openssl checks the result. The private keys cannot be read off the token and no
 * CA key file exists in the data directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { BulwarkError } from '../errors.js';
import { Pkcs11Error, TokenAccess } from '../keys/pkcs11.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform, type Platform } from '../platform.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { caKeyLocation, pkiPaths } from './ca.js';

const operator = { type: 'cli' as const, id: 'test' };

describe('CA keys on a PKCS#11 token', { skip: softHsmSkip, concurrency: 1 }, () => {
  let testToken: TestToken;
  let dataDir: string;
  let config: Config;
  let platform: Platform;
  let env: NodeJS.ProcessEnv;
  const ssl = new Openssl();

  before(async () => {
    testToken = createTestToken('bulwark-ca');
    dataDir = join(mkdtempSync(join(tmpdir(), 'bulwark-hsm-')), 'data');
    env = { BULWARK_PKCS11_PIN: testToken.pin };
    config = loadConfig({ dataDir, env: { BULWARK_KEYS_PKCS11_TOKEN_LABEL: testToken.label } });
    const init = await initialize(config, { ...DEFAULT_INIT, hsm: true }, { env });
    assert.equal(init.caKeys, 'hsm');
    platform = await openPlatform(config, { env });
  });
  after(async () => {
    await platform?.close();
    ssl.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
    testToken?.remove();
  });

  it('issues from an openssl CSR and revokes through the token; openssl verify -crl_check passes the good certificate and refuses the revoked one', async () => {
    const org = (await platform.accounts.store.listOrganizations())[0]!.id;
    const paths = pkiPaths(dataDir);
    const good = await platform.pki.issueDeviceCertificate(
      { organizationId: org, deviceId: 'hsm-good', csrPem: await ssl.csr('good', '/CN=hsm-good', P256) },
      operator,
    );
    const bad = await platform.pki.issueDeviceCertificate(
      { organizationId: org, deviceId: 'hsm-bad', csrPem: await ssl.csr('bad', '/CN=hsm-bad', P256) },
      operator,
    );
    await platform.pki.revoke({ organizationId: org, serial: bad.serial, reason: 'keyCompromise' }, operator);
    ssl.write('crl.pem', await platform.pki.crlFor());
    ssl.write('good.pem', good.pem);
    ssl.write('bad.pem', bad.pem);
    const verify = (name: string) =>
      ssl.run(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', paths.caCert, '-untrusted', paths.deviceCaCert, name]);
    const accepted = await verify('good.pem');
    assert.equal(accepted.ok, true, accepted.output);
    const refused = await verify('bad.pem');
    assert.equal(refused.ok, false);
    assert.match(refused.output, /certificate revoked/);
    // The CRL and both CA certificates carry signatures the token made.
    assert.match(await ssl.must(['crl', '-in', 'crl.pem', '-noout', '-CAfile', paths.deviceCaCert]), /verify OK/);
    assert.match(await ssl.must(['verify', '-CAfile', paths.caCert, paths.serverCaCert]), /OK/);
  });

  it('keeps the CA private keys on the token: sensitive, never extractable, CKA_VALUE unreadable', () => {
    const access = new TokenAccess(() => ({ tokenLabel: testToken.label, pin: testToken.pin }));
    try {
      const token = access.get();
      for (const name of ['ca', 'device-ca', 'server-ca'] as const) {
        const where = caKeyLocation(pkiPaths(dataDir).dir, name);
        assert.equal(where?.location, 'pkcs11', name);
        const signer = token.signer(where!.label!);
        assert.throws(
          () => token.attribute(signer.privateKey, pkcs11js.CKA_VALUE),
          (e: unknown) => e instanceof Pkcs11Error && /CKR_ATTRIBUTE_SENSITIVE/.test(e.message),
        );
        assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_SENSITIVE), Buffer.from([1]));
        assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_EXTRACTABLE), Buffer.from([0]));
        assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_NEVER_EXTRACTABLE), Buffer.from([1]));
      }
    } finally {
      access.close();
    }
  });

  it('records only key labels in DIR/pki: no CA private key file, and no PEM private key anywhere in it', () => {
    const dir = pkiPaths(dataDir).dir;
    const files = readdirSync(dir);
    for (const name of ['ca', 'device-ca', 'server-ca']) {
      assert.equal(existsSync(join(dir, `${name}.key.sealed`)), false, `${name}.key.sealed`);
      assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, `${name}.key.pkcs11`), 'utf8'))), ['label']);
    }
    // The HTTPS listener's own key is the one sealed key left (TLS needs it in memory).
    assert.deepEqual(files.filter((f) => f.includes('.key.')).sort(), [
      'ca.key.pkcs11',
      'device-ca.key.pkcs11',
      'server-ca.key.pkcs11',
      'server.key.sealed',
    ]);
    for (const file of files) assert.doesNotMatch(readFileSync(join(dir, file), 'utf8'), /PRIVATE KEY/, file);
  });

  it('refuses to start issuing without the token PIN, and init --hsm without a configured token', async () => {
    const withoutPin = await openPlatform(config, { env: {} });
    try {
      await assert.rejects(
        withoutPin.pki.caChain(),
        (e: unknown) => e instanceof BulwarkError && e.code === 'config.pkcs11_pin_missing' && /BULWARK_PKCS11_PIN/.test(e.message),
      );
    } finally {
      await withoutPin.close();
    }
    const other = join(dataDir, '..', 'other');
    await assert.rejects(
      initialize(loadConfig({ dataDir: other, env: {} }), { ...DEFAULT_INIT, hsm: true }, { env }),
      (e: unknown) => e instanceof BulwarkError && e.code === 'config.pkcs11_missing',
    );
    assert.equal(existsSync(other), false, 'nothing created');
  });

  it('refuses a PIN written into the configuration', () => {
    assert.throws(
      () => loadConfig({ dataDir, env: {}, overrides: { keys: { pkcs11: { tokenLabel: 'x', pin: '1234' } } } as never }),
      (e: unknown) => e instanceof BulwarkError && e.code === 'config.invalid' && /never stored in the configuration/.test(e.message),
    );
  });
});
