import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  definePolicy,
  evaluateRelease,
  keyIdOf,
  pae,
  repositoryOf,
  SLSA_PROVENANCE_V1,
  TEST_RESULT_V01,
  type ReleasePolicy,
} from './provenance.js';
import { attestation, provenanceStatement, testResultStatement } from '../testing/attestations.js';

const sha256 = createHash('sha256').update('image').digest('hex');
const ed = generateKeyPairSync('ed25519');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ed25519');
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
const BUILDER = 'https://github.com/actions/runner/github-hosted';
const REPO = 'https://github.com/acme/thermostat-fw';

const policy = (extra: Partial<ReleasePolicy> = {}): ReleasePolicy =>
  definePolicy({
    attestationKeys: [
      { keyid: keyIdOf(ed.publicKey), publicKey: pem(ed.publicKey) },
      { keyid: keyIdOf(ec.publicKey), publicKey: pem(ec.publicKey) },
    ],
    builders: [BUILDER],
    repositories: [REPO],
    requireProvenance: true,
    requireTests: true,
    ...extra,
  });
const provenance = (overrides: Parameters<typeof provenanceStatement>[1] = {}, key = ed.privateKey) =>
  attestation(
    provenanceStatement(sha256, { builder: BUILDER, repository: `git+${REPO}@refs/heads/main`, commit: 'a'.repeat(40), ...overrides }),
    key,
  );
const tests = (result: 'PASSED' | 'WARNED' | 'FAILED' = 'PASSED', key = ec.privateKey) =>
  attestation(testResultStatement(sha256, result), key);
const refusedWith = (code: string) => ({ code });

describe('release provenance and test gates', () => {
  it('encodes DSSE PAE as the specification test vector', () => {
    assert.equal(
      pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(),
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('accepts provenance and passing tests signed by policy keys (Ed25519 and ECDSA P-256), and shows builder, source and tests', () => {
    const view = evaluateRelease(policy(), [provenance(), tests()], sha256);
    assert.deepEqual(view, {
      builder: BUILDER,
      repository: REPO,
      commit: 'a'.repeat(40),
      tests: {
        result: 'PASSED',
        passed: 2,
        warned: 0,
        configuration: ['https://github.com/acme/thermostat-fw/.github/workflows/test.yml'],
      },
      signedBy: [keyIdOf(ed.publicKey), keyIdOf(ec.publicKey)],
    });
    assert.equal(evaluateRelease(null, [], sha256), null, 'no policy, no attestation: nothing to check');
  });

  it('refuses what a policy does not allow, naming why', () => {
    assert.throws(() => evaluateRelease(policy(), [tests()], sha256), refusedWith('update.provenance_missing'));
    assert.throws(() => evaluateRelease(policy(), [provenance()], sha256), refusedWith('update.tests_missing'));
    assert.throws(
      () => evaluateRelease(policy(), [provenance({ builder: 'https://evil.example/builder' }), tests()], sha256),
      refusedWith('update.provenance_builder'),
    );
    assert.throws(
      () =>
        evaluateRelease(
          policy(),
          [provenance({ repository: 'git+https://github.com/mallory/thermostat-fw@refs/heads/main' }), tests()],
          sha256,
        ),
      refusedWith('update.provenance_source'),
    );
    assert.throws(() => evaluateRelease(policy(), [provenance(), tests('FAILED')], sha256), refusedWith('update.tests_failed'));
    assert.throws(
      () => evaluateRelease(policy({ requireTests: false }), [provenance({ subject: 'b'.repeat(64) })], sha256),
      refusedWith('update.attestation_subject_mismatch'),
    );
  });

  it('refuses forged attestations: an untrusted key, an altered payload, a signature moved to another statement, no policy key', () => {
    assert.throws(
      () => evaluateRelease(policy(), [provenance({}, stranger.privateKey), tests()], sha256),
      refusedWith('update.attestation_untrusted'),
    );
    const altered = provenance();
    const statement = JSON.parse(Buffer.from(altered.payload, 'base64').toString());
    statement.predicate.runDetails.builder.id = BUILDER; // same builder …
    statement.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit = 'f'.repeat(40); // … another commit
    altered.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    assert.throws(() => evaluateRelease(policy(), [altered, tests()], sha256), refusedWith('update.attestation_untrusted'));
    const moved = tests();
    moved.payload = provenance().payload;
    assert.throws(() => evaluateRelease(policy(), [moved, tests()], sha256), refusedWith('update.attestation_untrusted'));
    assert.throws(() => evaluateRelease(null, [provenance()], sha256), refusedWith('update.attestation_untrusted'));
    assert.throws(() => evaluateRelease(policy(), [{ payload: 'x' }], sha256), refusedWith('update.attestation_invalid'));
    const wrongType = provenance();
    wrongType.payloadType = 'text/plain';
    assert.throws(() => evaluateRelease(policy(), [wrongType], sha256), refusedWith('update.attestation_invalid'));
  });

  it('checks a policy: keys that parse, key IDs that are the keys, repositories as URLs, a key when anything is required', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.throws(
      () => definePolicy({ attestationKeys: [{ keyid: keyIdOf(rsa.publicKey), publicKey: pem(rsa.publicKey) }] }),
      /Ed25519 or ECDSA P-256/,
    );
    assert.throws(
      () => definePolicy({ attestationKeys: [{ keyid: 'a'.repeat(64), publicKey: pem(ed.publicKey) }] }),
      /must be the key's ID/,
    );
    assert.throws(() => definePolicy({ attestationKeys: [{ keyid: 'x', publicKey: 'not a key' }] }), /not a PEM public key/);
    assert.throws(() => definePolicy({ repositories: ['github.com/acme/fw'] }), /https:\/\/host\/owner\/repo/);
    assert.throws(() => definePolicy({ requireTests: true }), /needs at least one attestation key/);
    assert.deepEqual(definePolicy({}), {
      attestationKeys: [],
      builders: [],
      repositories: [],
      requireProvenance: false,
      requireTests: false,
    });
  });

  it('reads the source repository from a resolved dependency URI', () => {
    assert.equal(repositoryOf('git+https://github.com/acme/fw@refs/heads/main'), 'https://github.com/acme/fw');
    assert.equal(repositoryOf('git+https://github.com/acme/fw.git'), 'https://github.com/acme/fw');
    assert.equal(SLSA_PROVENANCE_V1, 'https://slsa.dev/provenance/v1');
    assert.equal(TEST_RESULT_V01, 'https://in-toto.io/attestation/test-result/v0.1');
    void sign;
  });
});
