import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, verify } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { KeyCustodyError } from './custody.js';
import { Pkcs11Error, Pkcs11Token, type Pkcs11Algorithm } from './pkcs11.js';

describe('PKCS#11 custody on SoftHSM', { skip: softHsmSkip, concurrency: 1 }, () => {
  let testToken: TestToken;
  let token: Pkcs11Token;

  before(() => {
    testToken = createTestToken();
    token = Pkcs11Token.open({ tokenLabel: testToken.label, pin: testToken.pin });
  });
  after(() => {
    token?.close();
    testToken?.remove();
  });

  const cases: Array<[Pkcs11Algorithm, string]> = [
    ['ecdsa-p256', 'sha256'],
    ['ed25519', ''],
  ];
  for (const [algorithm, hash] of cases) {
    it(`generates a ${algorithm} key pair on the token whose signatures node:crypto verifies`, () => {
      const signer = token.generateKeyPair(algorithm, `ca-${algorithm}`);
      assert.equal(signer.publicKey.asymmetricKeyType, algorithm === 'ed25519' ? 'ed25519' : 'ec');
      const data = Buffer.from('tbsCertificate bytes');
      const signature = signer.sign(data);
      const key = algorithm === 'ed25519' ? signer.publicKey : { key: signer.publicKey, dsaEncoding: 'ieee-p1363' as const };
      assert.equal(verify(hash || null, data, key, signature), true);
      assert.equal(verify(hash || null, Buffer.from('other bytes'), key, signature), false);
      // Found again by label (as a restarted server would), it signs for the same public key.
      const again = token.signer(`ca-${algorithm}`);
      assert.equal(again.algorithm, algorithm);
      assert.equal(
        verify(
          hash || null,
          data,
          algorithm === 'ed25519' ? again.publicKey : { key: again.publicKey, dsaEncoding: 'ieee-p1363' },
          again.sign(data),
        ),
        true,
      );
    });

    it(`refuses to hand out the ${algorithm} private key`, () => {
      const signer = token.signer(`ca-${algorithm}`);
      assert.throws(
        () => token.attribute(signer.privateKey, pkcs11js.CKA_VALUE),
        (e: unknown) => e instanceof Pkcs11Error && e.code === 'keys.hsm_error' && /CKR_ATTRIBUTE_SENSITIVE/.test(e.message),
      );
      assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_EXTRACTABLE), Buffer.from([0]));
      assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_SENSITIVE), Buffer.from([1]));
      assert.deepEqual(token.attribute(signer.privateKey, pkcs11js.CKA_NEVER_EXTRACTABLE), Buffer.from([1]));
    });
  }

  it('wraps data keys under an AES key on the token, bound to their context', () => {
    const kek = token.generateKek('master');
    const dataKey = randomBytes(32);
    const wrapped = kek.wrap(dataKey, Buffer.from('user:1:totp'));
    assert.equal(wrapped.includes(dataKey), false);
    assert.deepEqual(kek.unwrap(wrapped, Buffer.from('user:1:totp')), dataKey);
    assert.throws(
      () => kek.unwrap(wrapped, Buffer.from('user:2:totp')),
      (e: unknown) => e instanceof KeyCustodyError,
    );
    assert.throws(() => token.attribute(kek.handle, pkcs11js.CKA_VALUE), /CKR_ATTRIBUTE_SENSITIVE/);
  });

  it('refuses a wrong PIN and an unknown token; keys persist across sessions', () => {
    token.close();
    assert.throws(
      () => Pkcs11Token.open({ tokenLabel: testToken.label, pin: 'wrong-pin' }),
      (e: unknown) => e instanceof Pkcs11Error && /CKR_PIN_INCORRECT/.test(e.message),
    );
    assert.throws(() => Pkcs11Token.open({ tokenLabel: 'no-such-token', pin: testToken.pin }), /No PKCS#11 token labelled "no-such-token"/);
    token = Pkcs11Token.open({ tokenLabel: testToken.label, pin: testToken.pin });
    const signer = token.signer('ca-ed25519');
    const data = Buffer.from('after reopening');
    assert.equal(verify(null, data, signer.publicKey, signer.sign(data)), true);
  });
});
