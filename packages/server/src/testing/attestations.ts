/**
 * In-toto attestations as a brand's CI would produce them, for tests: a Statement v1 with SLSA
 * provenance v1 or a test result v0.1 predicate about an image, in a DSSE envelope signed with a key.
 */
import { sign, type KeyObject } from 'node:crypto';
import { IN_TOTO_PAYLOAD_TYPE, keyIdOf, pae, SLSA_PROVENANCE_V1, STATEMENT_TYPE, TEST_RESULT_V01 } from '../updates/provenance.js';
import { createPublicKey } from 'node:crypto';

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export function attestation(statement: unknown, privateKey: KeyObject): Envelope {
  const payload = Buffer.from(JSON.stringify(statement));
  const algorithm = privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const sig = sign(algorithm, pae(IN_TOTO_PAYLOAD_TYPE, payload), privateKey).toString('base64');
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: keyIdOf(createPublicKey(privateKey)), sig }],
  };
}

export function provenanceStatement(
  sha256: string,
  {
    builder = 'https://github.com/actions/runner/github-hosted',
    repository = 'git+https://github.com/acme/fw@refs/heads/main',
    commit = 'a'.repeat(40),
    subject,
  }: {
    builder?: string;
    repository?: string;
    commit?: string;
    subject?: string;
  } = {},
) {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'firmware.bin', digest: { sha256: subject ?? sha256 } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: 'https://actions.github.io/buildtypes/workflow/v1',
        externalParameters: { workflow: { ref: 'refs/heads/main', repository: repository.replace(/^git\+/, '').replace(/@.*$/, '') } },
        resolvedDependencies: [{ uri: repository, digest: { gitCommit: commit } }],
      },
      runDetails: { builder: { id: builder }, metadata: { invocationId: 'https://github.com/acme/fw/actions/runs/1' } },
    },
  };
}

export function testResultStatement(sha256: string, result: 'PASSED' | 'WARNED' | 'FAILED') {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'firmware.bin', digest: { sha256 } }],
    predicateType: TEST_RESULT_V01,
    predicate: {
      result,
      configuration: [{ name: 'test.yml', uri: 'https://github.com/acme/thermostat-fw/.github/workflows/test.yml' }],
      passedTests: result === 'FAILED' ? ['boot'] : ['boot', 'ota-rollback'],
      warnedTests: [],
      failedTests: result === 'FAILED' ? ['ota-rollback'] : [],
    },
  };
}
