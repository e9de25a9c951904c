import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { KeyCustodyError } from '../keys/custody.js';
import { Pkcs11Token } from '../keys/pkcs11.js';
import { createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { createIssuingCa, createRootCa } from './ca.js';
import { generateCaSigner, generateSoftwareSigner, importSoftwareSigner, tokenCrypto } from './signer.js';

describe('CA signers', () => {
  it('a software key opened for signing only cannot be exported; one opened to be moved can, and is the same key', async () => {
    const pem = await (await generateSoftwareSigner()).exportPkcs8Pem();
    await assert.rejects(
      (await importSoftwareSigner(pem)).exportPkcs8Pem(),
      (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.not_exportable',
    );
    assert.equal(await (await importSoftwareSigner(pem, true)).exportPkcs8Pem(), pem);
  });

  describe('on a PKCS#11 token', { skip: softHsmSkip, concurrency: 1 }, () => {
    let testToken: TestToken;
    let token: Pkcs11Token;
    before(() => {
      testToken = createTestToken('bulwark-signer');
      token = Pkcs11Token.open({ tokenLabel: testToken.label, pin: testToken.pin });
    });
    after(() => {
      token?.close();
      testToken?.remove();
    });

    it('signs certificates through @peculiar/x509 that node verifies with the token public key, and only with it', async () => {
      const root = await createRootCa('CN=Token Root', new Date(), await generateCaSigner(token, 'root'));
      const issuing = await createIssuingCa(root, 'CN=Token Issuing', new Date(), await generateCaSigner(token, 'issuing'));
      const rootCert = new X509Certificate(root.cert.toString('pem'));
      const issuingCert = new X509Certificate(issuing.cert.toString('pem'));
      assert.equal(rootCert.verify(rootCert.publicKey), true);
      assert.equal(issuingCert.verify(rootCert.publicKey), true);
      assert.equal(issuingCert.verify(issuingCert.publicKey), false);
      assert.equal(issuingCert.verify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), false);
      assert.equal(root.signer.location, 'pkcs11');
      assert.match(root.signer.tokenLabel ?? '', /^root-[0-9a-f]{12}$/);
    });

    it('refuses a token signature over anything but SHA-256', async () => {
      const signer = await generateCaSigner(token, 'hash');
      await assert.rejects(
        tokenCrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-1' } as EcdsaParams, signer.privateKey, Buffer.from('tbs')),
        (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.hsm_unsupported',
      );
    });
  });
});
