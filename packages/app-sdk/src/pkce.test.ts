import assert from 'node:assert/strict';
import { test } from 'node:test';
import { challengeOf, createPkcePair } from './pkce.js';

test('computes the S256 challenge of RFC 7636 appendix B', async () => {
  assert.equal(await challengeOf('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
});

test('creates fresh 43-character verifiers whose challenge matches', async () => {
  const a = await createPkcePair();
  const b = await createPkcePair();
  assert.match(a.verifier, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.verifier, b.verifier);
  assert.equal(a.challenge, await challengeOf(a.verifier));
  assert.equal(a.method, 'S256');
});

test('refuses a verifier RFC 7636 does not allow', async () => {
  await assert.rejects(challengeOf('too-short'), /43 to 128 characters/);
  await assert.rejects(challengeOf('x'.repeat(42) + ' '), /43 to 128 characters/);
});
