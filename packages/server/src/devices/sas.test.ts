import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  createToken,
  deriveDeviceKey,
  deviceResource,
  parseToken,
  registrationResource,
  SasFormatError,
  signatureMatches,
  stringToSign,
} from './sas.js';

const key = randomBytes(32);

describe('shared access signatures', () => {
  it('signs encodeURIComponent(resource) + "\\n" + se with HMAC-SHA256, in the Azure token layout', () => {
    const token = createToken(key, 'devices/abc', 1_900_000_000);
    const sig = createHmac('sha256', key).update('devices%2Fabc\n1900000000').digest('base64');
    assert.equal(token, `SharedAccessSignature sr=devices%2Fabc&se=1900000000&sig=${encodeURIComponent(sig)}`);
    assert.equal(stringToSign('devices/abc', 1_900_000_000), 'devices%2Fabc\n1900000000');
  });

  it('round-trips any resource and expiry, and the MAC matches only the key that made it', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 99_999_999_999 }), (resource, se) => {
        const token = createToken(key, resource, se);
        const parsed = parseToken(token);
        assert.equal(parsed.resource, resource);
        assert.equal(parsed.expiresAt, se);
        assert.equal(signatureMatches(parsed, key), true);
        assert.equal(signatureMatches(parsed, randomBytes(32)), false);
      }),
      { numRuns: 200 },
    );
  });

  it('accepts the fields in any order and another percent-encoding of the same resource', () => {
    const good = parseToken(createToken(key, 'devices/abc', 1_900_000_000));
    const sig = encodeURIComponent(good.signature.toString('base64'));
    const reordered = parseToken(`SharedAccessSignature sig=${sig}&se=1900000000&sr=devices%2fabc`);
    assert.equal(signatureMatches(reordered, key), true);
  });

  it('refuses anything but exactly sr, se and sig with a SasFormatError, never another exception', () => {
    const sig = encodeURIComponent(createHmac('sha256', key).update('x').digest('base64'));
    for (const bad of [
      '',
      'Bearer abc',
      'SharedAccessSignature ',
      `SharedAccessSignature sr=devices%2Fa&se=1900000000`,
      `SharedAccessSignature sr=devices%2Fa&se=1900000000&sig=${sig}&skn=owner`,
      `SharedAccessSignature sr=devices%2Fa&sr=devices%2Fb&se=1900000000&sig=${sig}`,
      `SharedAccessSignature sr=devices%2Fa&se=-5&sig=${sig}`,
      `SharedAccessSignature sr=devices%2Fa&se=1e12&sig=${sig}`,
      `SharedAccessSignature sr=devices%2Fa&se=1900000000&sig=abc`,
      `SharedAccessSignature sr=%E0%A4%A&se=1900000000&sig=${sig}`,
      `SharedAccessSignature sr=devices%2Fa&se=1900000000&sig=${sig}${'A'.repeat(1100)}`,
    ]) {
      assert.throws(() => parseToken(bad), SasFormatError, bad);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (suffix) => {
        try {
          parseToken(`SharedAccessSignature ${suffix}`);
        } catch (error) {
          assert.ok(error instanceof SasFormatError, String(error));
        }
      }),
    );
  });

  it('derives a device key as Azure DPS does: HMAC-SHA256(groupKey, registrationId), raw 32 bytes', () => {
    const groupKey = randomBytes(32);
    assert.deepEqual(deriveDeviceKey(groupKey.toString('base64'), 'SN-1'), createHmac('sha256', groupKey).update('SN-1').digest());
    assert.notDeepEqual(deriveDeviceKey(groupKey, 'SN-1'), deriveDeviceKey(groupKey, 'SN-2'));
    assert.equal(registrationResource('g', 'SN-1'), 'registrations/g/SN-1');
    assert.equal(deviceResource('d'), 'devices/d');
    assert.throws(() => deriveDeviceKey(randomBytes(16), 'SN-1'), SasFormatError);
  });
});
