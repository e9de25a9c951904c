/**
 * Checks on signed TUF metadata before the repository accepts it: well-formed (parsed by
 * @tufjs/models), keys that are Ed25519 with the key ID the specification computes (so one key
 * cannot pose as two and meet a threshold alone), signatures counted once per distinct key, and
 * expiry against the platform clock. Every refusal is a MetadataRejectedError with a reason.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Metadata, MetadataKind, type Key, type Root, type Targets } from '@tufjs/models';
import { MetadataRejectedError } from '../errors.js';

type Json = Parameters<typeof Metadata.fromJSON>[1];

/** The key ID of a key as the specification computes it: SHA-256 of the canonical JSON of the key. */
export function computedKeyId(key: Key): string {
  return createHash('sha256').update(canonicalize(key.toJSON())).digest('hex');
}

export function parseRoot(json: unknown, what: string): Metadata<Root> {
  return parse(MetadataKind.Root, json, what);
}

export function parseTargets(json: unknown, what: string): Metadata<Targets> {
  return parse(MetadataKind.Targets, json, what);
}

function parse<K extends MetadataKind.Root | MetadataKind.Targets>(kind: K, json: unknown, what: string) {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new MetadataRejectedError(`${what} must be a JSON object of signed TUF metadata`, { reason: 'malformed' });
  let metadata: Metadata<Root> | Metadata<Targets>;
  try {
    metadata =
      kind === MetadataKind.Root
        ? Metadata.fromJSON(MetadataKind.Root, json as Json)
        : Metadata.fromJSON(MetadataKind.Targets, json as Json);
  } catch (error) {
    throw new MetadataRejectedError(`${what} is not valid TUF ${kind} metadata: ${(error as Error).message}`, { reason: 'malformed' });
  }
  const { version, expires } = metadata.signed;
  if (!Number.isSafeInteger(version) || version < 1)
    throw new MetadataRejectedError(`${what} has version ${String(version)}: a whole number from 1 is expected`, { reason: 'malformed' });
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(expires) || Number.isNaN(Date.parse(expires))) {
    throw new MetadataRejectedError(`${what} expires "${expires}": a UTC time such as 2030-01-01T00:00:00Z is expected`, {
      reason: 'malformed',
    });
  }
  return metadata as K extends MetadataKind.Root ? Metadata<Root> : Metadata<Targets>;
}

/** Refuses any key that is not Ed25519 or whose key ID is not the computed one. */
export function checkKeys(keys: Record<string, Key>, what: string): void {
  for (const [keyId, key] of Object.entries(keys)) {
    if (key.keyType !== 'ed25519' || key.scheme !== 'ed25519' || !/^[0-9a-f]{64}$/.test(key.keyVal.public ?? '')) {
      throw new MetadataRejectedError(
        `${what}: key ${keyId} must be an Ed25519 key (keytype and scheme "ed25519", 32-byte public key in hex)`,
        { reason: 'keys', keyId },
      );
    }
    if (computedKeyId(key) !== keyId) {
      throw new MetadataRejectedError(`${what}: key ID ${keyId} is not the SHA-256 of the key's canonical JSON`, { reason: 'keys', keyId });
    }
  }
}

/** Refuses a role whose threshold is not between 1 and its number of listed keys, or that names keys not listed. */
export function checkRole(role: { keyIDs: string[]; threshold: number }, keys: Record<string, Key>, what: string): void {
  const distinct = new Set(role.keyIDs);
  if (distinct.size !== role.keyIDs.length) throw new MetadataRejectedError(`${what} lists a key twice`, { reason: 'keys' });
  for (const id of role.keyIDs)
    if (!keys[id])
      throw new MetadataRejectedError(`${what} names key ${id}, which the metadata does not list`, { reason: 'keys', keyId: id });
  if (!Number.isInteger(role.threshold) || role.threshold < 1 || role.threshold > role.keyIDs.length) {
    throw new MetadataRejectedError(
      `${what} has threshold ${role.threshold} with ${role.keyIDs.length} key(s): it must be from 1 to the number of keys`,
      { reason: 'keys' },
    );
  }
}

/**
 * Counts the distinct keys of `role` with a valid signature on `metadata` and refuses fewer than
 * the threshold. A key counts once, whatever key IDs it is listed under.
 */
export function verifyThreshold(
  metadata: Metadata<Root | Targets>,
  role: { keyIDs: string[]; threshold: number },
  keys: Record<string, Key>,
  what: string,
  by: string,
): void {
  const signers = new Set<string>();
  for (const id of role.keyIDs) {
    const key = keys[id];
    if (!key) continue;
    try {
      key.verifySignature(metadata);
      signers.add(key.keyVal.public ?? id);
    } catch {
      // A missing or bad signature simply does not count toward the threshold.
    }
  }
  if (signers.size < role.threshold) {
    throw new MetadataRejectedError(`${what} is signed by ${signers.size} of the ${role.threshold} ${by} key(s) it needs`, {
      reason: 'signature',
      valid: signers.size,
      threshold: role.threshold,
    });
  }
}

export function checkUnexpired(metadata: Metadata<Root | Targets>, now: number, what: string): void {
  if (Date.parse(metadata.signed.expires) <= now)
    throw new MetadataRejectedError(`${what} expired at ${metadata.signed.expires}: sign it again with a later expiry`, {
      reason: 'expired',
    });
}

/** TUF's timestamp form: UTC, whole seconds. */
export function tufTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
