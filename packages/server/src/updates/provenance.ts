/**
 * Release provenance and test gates: in-toto attestations (Statement v1) in DSSE envelopes, signed
 * by keys a product's release policy trusts, checked against that policy before a release is
 * published. Two predicates are read: SLSA provenance v1 (who built the image, from which source
 * repository and commit) and in-toto test results v0.1 (did the tests pass). Pure: no database.
 *
 * DSSE (github.com/secure-systems-lab/dsse, protocol.md): a signature covers
 * PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in ASCII
 * decimal bytes. A key is an Ed25519 or ECDSA P-256 public key (SPKI PEM); ECDSA signatures are DER.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ErrorCodes, type ErrorCode, type ReleaseProvenance } from '@bulwark/protocol';
import { UpdateError } from './errors.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const TEST_RESULT_V01 = 'https://in-toto.io/attestation/test-result/v0.1';
export const MAX_ATTESTATIONS = 10;
export const MAX_ATTESTATION_BYTES = 256 * 1024;
export const MAX_POLICY_KEYS = 20;
export const MAX_POLICY_ENTRIES = 50;

/** What a product requires of its releases. Changing it needs org:manage, so a release key cannot weaken it. */
export interface ReleasePolicy {
  /** Keys whose attestations are believed: `keyid` is what envelopes name, `publicKey` an SPKI PEM. */
  attestationKeys: { keyid: string; publicKey: string }[];
  /** SLSA builder IDs accepted (exact). Empty: any builder a trusted key vouches for. */
  builders: string[];
  /** Source repositories accepted, as `https://host/owner/repo` (exact, no `git+`, no ref). Empty: any. */
  repositories: string[];
  requireProvenance: boolean;
  requireTests: boolean;
}

/** What a release shows of its origin and tests: a wire shape the console reads too (@bulwark/protocol). */
export type { ReleaseProvenance };

/** A release refused by its product's policy; the reason is stored and audited. */
export class ReleasePolicyError extends UpdateError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 422, details);
  }
}

/** A release policy that breaks a rule (keys that do not parse, a key ID that is not the key's). */
export class ReleasePolicyInvalidError extends UpdateError {
  constructor(message: string) {
    super(ErrorCodes.releasePolicyInvalid, message, 400);
  }
}

export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** The key ID a policy uses for a key: SHA-256 of its DER SubjectPublicKeyInfo, in hex (as cosign and in-toto do for SPKI keys). */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

interface TrustedKey {
  keyid: string;
  key: KeyObject;
}

/** Checks a policy an operator sets and normalizes it; ReleasePolicyInvalidError names the first problem. */
export function definePolicy(input: Partial<ReleasePolicy>): ReleasePolicy {
  const keys = input.attestationKeys ?? [];
  if (keys.length > MAX_POLICY_KEYS) throw new ReleasePolicyInvalidError(`attestationKeys: at most ${MAX_POLICY_KEYS}`);
  for (const [i, entry] of keys.entries()) {
    let key: KeyObject;
    try {
      key = createPublicKey(entry.publicKey);
    } catch {
      throw new ReleasePolicyInvalidError(`attestationKeys[${i}].publicKey is not a PEM public key`);
    }
    const type = key.asymmetricKeyType;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type !== 'ed25519' && !(type === 'ec' && curve === 'prime256v1'))
      throw new ReleasePolicyInvalidError(`attestationKeys[${i}] must be Ed25519 or ECDSA P-256, not ${type}${curve ? ` ${curve}` : ''}`);
    if (entry.keyid !== keyIdOf(key))
      throw new ReleasePolicyInvalidError(
        `attestationKeys[${i}].keyid must be the key's ID, the SHA-256 of its DER SubjectPublicKeyInfo: ${keyIdOf(key)}`,
      );
  }
  for (const field of ['builders', 'repositories'] as const) {
    const list = input[field] ?? [];
    if (list.length > MAX_POLICY_ENTRIES) throw new ReleasePolicyInvalidError(`${field}: at most ${MAX_POLICY_ENTRIES}`);
  }
  for (const repository of input.repositories ?? [])
    if (!/^https:\/\/[^\s/@]+\/[^\s@]+[^/\s@]$/.test(repository) || repository.endsWith('.git'))
      throw new ReleasePolicyInvalidError(`repositories: "${repository}" must be https://host/owner/repo (no .git, no ref)`);
  const policy: ReleasePolicy = {
    attestationKeys: keys.map((k) => ({ keyid: k.keyid, publicKey: k.publicKey.trim() + '\n' })),
    builders: [...new Set(input.builders ?? [])],
    repositories: [...new Set(input.repositories ?? [])],
    requireProvenance: input.requireProvenance ?? false,
    requireTests: input.requireTests ?? false,
  };
  if ((policy.requireProvenance || policy.requireTests) && policy.attestationKeys.length === 0)
    throw new ReleasePolicyInvalidError('A policy that requires provenance or tests needs at least one attestation key to believe them');
  return policy;
}

const refuse = (code: ErrorCode, message: string, details?: Record<string, unknown>) => new ReleasePolicyError(code, message, details);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The statement inside an envelope, if a trusted key signed it; refuses a forged or malformed envelope. */
function openEnvelope(envelope: unknown, index: number, keys: TrustedKey[]): { statement: Json; signedBy: string } {
  const where = `attestations[${index}]`;
  if (
    !isObject(envelope) ||
    typeof envelope.payload !== 'string' ||
    typeof envelope.payloadType !== 'string' ||
    !Array.isArray(envelope.signatures)
  )
    throw refuse('update.attestation_invalid', `${where} is not a DSSE envelope (payloadType, payload, signatures)`);
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw refuse('update.attestation_invalid', `${where}.payloadType must be ${IN_TOTO_PAYLOAD_TYPE}`);
  const payload = Buffer.from(envelope.payload, 'base64');
  if (payload.length > MAX_ATTESTATION_BYTES) throw refuse('update.attestation_invalid', `${where} is over ${MAX_ATTESTATION_BYTES} bytes`);
  const signed = pae(envelope.payloadType, payload);
  let signedBy: string | null = null;
  for (const signature of envelope.signatures.slice(0, 10)) {
    if (!isObject(signature) || typeof signature.sig !== 'string') continue;
    const candidates = typeof signature.keyid === 'string' && signature.keyid ? keys.filter((k) => k.keyid === signature.keyid) : keys;
    const sig = Buffer.from(signature.sig, 'base64');
    const match = candidates.find(({ key }) => {
      try {
        return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', signed, key, sig);
      } catch {
        return false;
      }
    });
    if (match) {
      signedBy = match.keyid;
      break;
    }
  }
  if (!signedBy)
    throw refuse(
      'update.attestation_untrusted',
      `${where} carries no signature that verifies with a key of the product's release policy (a forged, altered or foreign attestation)`,
    );
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString('utf8'));
  } catch {
    throw refuse('update.attestation_invalid', `${where}'s payload is not JSON`);
  }
  if (
    !isObject(statement) ||
    statement._type !== STATEMENT_TYPE ||
    !Array.isArray(statement.subject) ||
    typeof statement.predicateType !== 'string'
  )
    throw refuse('update.attestation_invalid', `${where} is not an in-toto Statement v1 (_type, subject, predicateType, predicate)`);
  return { statement, signedBy };
}

/** `git+https://github.com/acme/fw@refs/heads/main` → `https://github.com/acme/fw`. */
export function repositoryOf(uri: string): string {
  const url = uri.replace(/^git\+/, '');
  // The ref follows the first "@" in the path (an "@" before it would be credentials in the authority).
  const path = url.indexOf('/', url.indexOf('://') + 3);
  const at = path < 0 ? -1 : url.indexOf('@', path);
  return (at < 0 ? url : url.slice(0, at)).replace(/\.git$/, '');
}

function provenanceOf(predicate: Json): { builder: string | null; repository: string | null; commit: string | null } {
  const runDetails = isObject(predicate.runDetails) ? predicate.runDetails : {};
  const builder = isObject(runDetails.builder) && typeof runDetails.builder.id === 'string' ? runDetails.builder.id : null;
  const definition = isObject(predicate.buildDefinition) ? predicate.buildDefinition : {};
  const dependencies = Array.isArray(definition.resolvedDependencies) ? definition.resolvedDependencies : [];
  const source = dependencies.find(
    (d): d is Json => isObject(d) && typeof d.uri === 'string' && isObject(d.digest) && typeof d.digest.gitCommit === 'string',
  );
  return {
    builder,
    repository: source ? repositoryOf(source.uri as string) : null,
    commit: source ? ((source.digest as Json).gitCommit as string) : null,
  };
}

const count = (v: unknown) => (Array.isArray(v) ? v.length : 0);

/**
 * Verifies the attestations of a release of the image `sha256` against the product's policy (null:
 * none set) and returns what the release shows; throws ReleasePolicyError with a stable code:
 * `update.attestation_invalid` / `_untrusted` / `_subject_mismatch`, `update.provenance_missing`,
 * `update.provenance_builder`, `update.provenance_source`, `update.tests_missing`, `update.tests_failed`.
 */
export function evaluateRelease(policy: ReleasePolicy | null, attestations: unknown[], sha256: string): ReleaseProvenance | null {
  if (attestations.length > MAX_ATTESTATIONS) throw refuse('update.attestation_invalid', `At most ${MAX_ATTESTATIONS} attestations`);
  if (attestations.length === 0 && !policy?.requireProvenance && !policy?.requireTests) return null;
  const keys: TrustedKey[] = (policy?.attestationKeys ?? []).map((k) => ({ keyid: k.keyid, key: createPublicKey(k.publicKey) }));
  if (attestations.length > 0 && keys.length === 0)
    throw refuse(
      'update.attestation_untrusted',
      "This product's release policy trusts no attestation key: an owner or admin sets one (PUT /api/v1/products/:id/release-policy)",
    );
  const view: ReleaseProvenance = { builder: null, repository: null, commit: null, tests: null, signedBy: [] };
  let provenance = false;
  for (const [index, envelope] of attestations.entries()) {
    const { statement, signedBy } = openEnvelope(envelope, index, keys);
    const covers = (statement.subject as unknown[]).some((s) => isObject(s) && isObject(s.digest) && s.digest.sha256 === sha256);
    if (!covers)
      throw refuse(
        'update.attestation_subject_mismatch',
        `attestations[${index}] is about another artifact: no subject has the image's sha256 ${sha256}`,
        {
          index,
        },
      );
    const predicate = isObject(statement.predicate) ? statement.predicate : {};
    if (!view.signedBy.includes(signedBy)) view.signedBy.push(signedBy);
    if (statement.predicateType === SLSA_PROVENANCE_V1) {
      const found = provenanceOf(predicate);
      if (policy && policy.builders.length > 0 && !(found.builder && policy.builders.includes(found.builder)))
        throw refuse(
          'update.provenance_builder',
          `The image was built by ${JSON.stringify(found.builder)}, not a builder the policy accepts`,
          {
            builder: found.builder,
            accepted: policy.builders,
          },
        );
      if (policy && policy.repositories.length > 0 && !(found.repository && policy.repositories.includes(found.repository)))
        throw refuse(
          'update.provenance_source',
          `The image was built from ${JSON.stringify(found.repository)}, not a source repository the policy accepts`,
          { repository: found.repository, accepted: policy.repositories },
        );
      if (!found.commit)
        throw refuse(
          'update.attestation_invalid',
          `attestations[${index}]: the provenance names no source commit (resolvedDependencies with digest.gitCommit)`,
        );
      Object.assign(view, found);
      provenance = true;
    } else if (statement.predicateType === TEST_RESULT_V01) {
      const result = predicate.result;
      if (result !== 'PASSED' && result !== 'WARNED' && result !== 'FAILED')
        throw refuse('update.attestation_invalid', `attestations[${index}]: a test result's result must be PASSED, WARNED or FAILED`);
      if (result === 'FAILED' || count(predicate.failedTests) > 0)
        throw refuse(
          'update.tests_failed',
          `The test results attested for the image failed (${count(predicate.failedTests)} failed test(s))`,
          {
            failedTests: (Array.isArray(predicate.failedTests) ? predicate.failedTests : []).slice(0, 20),
          },
        );
      const configuration = (Array.isArray(predicate.configuration) ? predicate.configuration : [])
        .map((c) => (isObject(c) && typeof c.uri === 'string' ? c.uri : null))
        .filter((c): c is string => c !== null)
        .slice(0, 20);
      view.tests = { result, passed: count(predicate.passedTests), warned: count(predicate.warnedTests), configuration };
    }
  }
  if (policy?.requireProvenance && !provenance)
    throw refuse(
      'update.provenance_missing',
      'The product requires SLSA provenance for its releases: attach a signed provenance attestation',
    );
  if (policy?.requireTests && !view.tests)
    throw refuse(
      'update.tests_missing',
      'The product requires passing test results for its releases: attach a signed test-result attestation',
    );
  return view;
}
