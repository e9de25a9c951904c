import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CLAIM_CODE_ALPHABET, claimLabelLink, formatClaimCode, normalizeClaimCode, readClaimLabel } from './claim-codes.js';

const ORIGIN = 'https://devices.example.com';
const code = fc.array(fc.constantFrom(...CLAIM_CODE_ALPHABET), { minLength: 16, maxLength: 16 }).map((c) => formatClaimCode(c.join('')));

describe('claim codes and label links', () => {
  it('normalises what a consumer types: case, dashes, spaces and the look-alikes I, L and O', () => {
    assert.equal(normalizeClaimCode(' 7qk2-m9xd 4foa-ciRZ '), '7QK2M9XD4F0AC1RZ');
    assert.equal(normalizeClaimCode('7QK2-M9XD-4F0A-C1R'), null, 'too short');
    assert.equal(normalizeClaimCode('7QK2-M9XD-4F0A-C1RU'), null, 'U is not in the alphabet');
  });

  it('reads back every code from its label link, with the product ID', () => {
    fc.assert(
      fc.property(code, fc.string({ minLength: 1, maxLength: 40 }), (c, product) => {
        const link = claimLabelLink(`${ORIGIN}/`, product, c);
        assert.ok(link.startsWith(`${ORIGIN}/app/add?product=`));
        assert.deepEqual(readClaimLabel(link, ORIGIN), { kind: 'code', code: c, productId: product });
      }),
    );
  });

  it('reads a bare code as it is printed or typed', () => {
    fc.assert(
      fc.property(code, (c) =>
        assert.deepEqual(readClaimLabel(` ${c.toLowerCase()}\n`, ORIGIN), { kind: 'code', code: c, productId: null }),
      ),
    );
  });

  it('refuses a link to any other origin or scheme, whatever it holds', () => {
    const c = '7QK2-M9XD-4F0A-C1RZ';
    assert.deepEqual(readClaimLabel(`https://evil.example/app/add#code=${c}`, ORIGIN), {
      kind: 'other_origin',
      origin: 'https://evil.example',
    });
    assert.deepEqual(readClaimLabel(`http://devices.example.com/app/add#code=${c}`, ORIGIN), {
      kind: 'other_origin',
      origin: 'http://devices.example.com',
    });
    assert.deepEqual(readClaimLabel(`https://devices.example.com.evil.example/app/add#code=${c}`, ORIGIN).kind, 'other_origin');
    assert.deepEqual(readClaimLabel(`javascript:alert(1)//#code=${c}`, ORIGIN), { kind: 'other_origin', origin: 'javascript:…' });
    assert.deepEqual(readClaimLabel(`data:text/html,<script>alert(1)</script>`, ORIGIN), { kind: 'other_origin', origin: 'data:…' });
  });

  it('refuses this origin’s links that are not a label, and labels without a valid code', () => {
    assert.deepEqual(readClaimLabel(`${ORIGIN}/app/account#code=7QK2-M9XD-4F0A-C1RZ`, ORIGIN), { kind: 'not_a_code' });
    assert.deepEqual(readClaimLabel(`${ORIGIN}/app/add?product=p#code=NOPE`, ORIGIN), { kind: 'not_a_code' });
    assert.deepEqual(
      readClaimLabel(`${ORIGIN}/app/add?code=7QK2-M9XD-4F0A-C1RZ`, ORIGIN),
      { kind: 'not_a_code' },
      'the code belongs in the fragment',
    );
    assert.deepEqual(readClaimLabel('hello', ORIGIN), { kind: 'not_a_code' });
  });
});
