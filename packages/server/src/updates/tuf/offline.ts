/**
 * The offline side of the image repository (docs/updates.md, "The ceremony and a first release"):
 * Ed25519 keys in passphrase-encrypted files, unsigned roots for the image repository and the
 * director, top-level targets with one delegation per product line, image targets added to a
 * product line's metadata, and signatures appended by each key holder. Pure library: no server,
 * no database; used by `bulwark firmware …` and the tests.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Key, Metadata, MetadataKind, Root, Signature, TargetFile, Targets } from '@tufjs/models';
// Not re-exported by the package index; the same module instances its parsers use.
import { Delegations } from '@tufjs/models/dist/delegations.js';
import { DelegatedRole, Role } from '@tufjs/models/dist/role.js';
import { PRODUCT_ID_PATTERN, productRoleOf, targetNameOf, type ImageTargetCustom } from '@bulwark/protocol';
import { ValidationError } from '../../errors.js';
import { encryptPrivateKey, KeyFileExistsError, openKeyFile, shellWord, writeNewKeyFile } from '../../keys/passphrase-keys.js';
import { tufKeyOf } from './keys.js';
import { computedKeyId, tufTime } from './verify.js';

export const DEFAULT_EXPIRY_DAYS = 365;
const DAY_MS = 86_400_000;

/** The public halves of a server's online keys (`bulwark firmware online-keys`). */
export interface OnlineKeys {
  organizationId: string;
  snapshot: Key;
  timestamp: Key;
  director: Key;
}

type Json = Parameters<typeof Metadata.fromJSON>[1];

export function expiresIn(days: number, now = Date.now()): string {
  if (!Number.isFinite(days) || days <= 0) throw new ValidationError(`expiry must be a positive number of days, not ${days}`);
  return tufTime(now + days * DAY_MS);
}

/** The `.pub` file form of a key: the TUF key JSON with its key ID. */
export function publicKeyJson(key: Key): Record<string, unknown> {
  return { keyid: key.keyID, ...key.toJSON() };
}

/** A TUF key from its `.pub` JSON, refused when the key ID is not the one its content computes to. */
export function keyFromJson(value: unknown, what: string): Key {
  const record = value as { keyid?: unknown } | null;
  if (!record || typeof record !== 'object' || typeof record.keyid !== 'string')
    throw new ValidationError(`${what} is not a TUF public key (keyid, keytype, scheme, keyval)`);
  let key: Key;
  try {
    const { keyid, ...body } = record as Record<string, unknown>;
    key = Key.fromJSON(keyid as string, body as Json);
  } catch (error) {
    throw new ValidationError(`${what} is not a TUF public key: ${(error as Error).message}`);
  }
  if (key.keyType !== 'ed25519' || computedKeyId(key) !== key.keyID)
    throw new ValidationError(`${what} is not an Ed25519 key with its computed key ID`);
  return key;
}

/** A fresh Ed25519 key pair with its TUF key (kept in memory; `generateKeyFiles` writes them out). */
export function newKeyPair(): { privateKey: KeyObject; key: Key } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, key: tufKeyOf(publicKey) };
}

/**
 * Writes `<prefix>.key` (encrypted PKCS#8 under the passphrase at the policy of keys/passphrase-keys.ts,
 * mode 0600) and `<prefix>.pub`; refuses a weak passphrase and never overwrites either file.
 */
export function generateKeyFiles(prefix: string, passphrase: string): { keyPath: string; pubPath: string; key: Key } {
  const { privateKey, key } = newKeyPair();
  const keyPath = `${prefix}.key`;
  const pubPath = `${prefix}.pub`;
  for (const path of [keyPath, pubPath]) if (existsSync(path)) throw new KeyFileExistsError(path);
  writeNewKeyFile(keyPath, encryptPrivateKey(privateKey, passphrase));
  writeFileSync(pubPath, JSON.stringify(publicKeyJson(key), null, 2) + '\n', { mode: 0o644, flag: 'wx' });
  return { keyPath, pubPath, key };
}

/** The command that re-encrypts a firmware key file at the current policy. */
const rekeyCommandFor = (path: string) => `bulwark firmware rekey --key ${shellWord(path)}`;

/** Opens an Ed25519 key file; `onWarning` hears when the file is protected below the policy. */
export function loadPrivateKey(path: string, passphrase: string, onWarning: (message: string) => void): KeyObject {
  const { privateKey, warning } = openKeyFile(path, passphrase, rekeyCommandFor(path));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ValidationError(`${path} is not an Ed25519 key`);
  if (warning) onWarning(warning);
  return privateKey;
}

export function loadPublicKey(path: string): Key {
  return keyFromJson(readJson(path), path);
}

export function publicKeyOf(privateKey: KeyObject): Key {
  return tufKeyOf(createPublicKey(privateKey));
}

export function onlineKeysFromJson(value: unknown, what = 'the online keys'): OnlineKeys {
  const record = value as Record<string, unknown> | null;
  if (!record || typeof record !== 'object' || typeof record.organizationId !== 'string')
    throw new ValidationError(`${what} must hold organizationId, snapshot, timestamp and director keys`);
  return {
    organizationId: record.organizationId,
    snapshot: keyFromJson(record.snapshot, `${what}: snapshot`),
    timestamp: keyFromJson(record.timestamp, `${what}: timestamp`),
    director: keyFromJson(record.director, `${what}: director`),
  };
}

export function onlineKeysJson(keys: OnlineKeys): Record<string, unknown> {
  return {
    organizationId: keys.organizationId,
    snapshot: publicKeyJson(keys.snapshot),
    timestamp: publicKeyJson(keys.timestamp),
    director: publicKeyJson(keys.director),
  };
}

function distinctKeys(keys: Key[], what: string): Key[] {
  const ids = new Set(keys.map((k) => k.keyID));
  if (ids.size !== keys.length) throw new ValidationError(`${what}: the same key is given twice`);
  if (keys.length === 0) throw new ValidationError(`${what}: at least one key is needed`);
  return keys;
}

function checkThreshold(threshold: number, keys: Key[], what: string): void {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys.length)
    throw new ValidationError(`${what}: threshold ${threshold} must be from 1 to the ${keys.length} key(s) given`);
}

export interface RootPlan {
  rootKeys: Key[];
  threshold: number;
  targetsKeys: Key[];
  targetsThreshold?: number;
  online: OnlineKeys;
  expires: string;
  version?: number;
}

/** The unsigned image repository root: root and targets keys offline, snapshot and timestamp the server's. */
export function buildRoot(plan: RootPlan): Metadata<Root> {
  distinctKeys(plan.rootKeys, 'root keys');
  distinctKeys(plan.targetsKeys, 'targets keys');
  checkThreshold(plan.threshold, plan.rootKeys, 'root');
  const targetsThreshold = plan.targetsThreshold ?? 1;
  checkThreshold(targetsThreshold, plan.targetsKeys, 'targets');
  const root = new Root({ version: plan.version ?? 1, specVersion: '1.0.31', expires: plan.expires, consistentSnapshot: true });
  for (const key of plan.rootKeys) root.addKey(key, MetadataKind.Root);
  for (const key of plan.targetsKeys) root.addKey(key, MetadataKind.Targets);
  root.addKey(plan.online.snapshot, MetadataKind.Snapshot);
  root.addKey(plan.online.timestamp, MetadataKind.Timestamp);
  root.roles[MetadataKind.Root] = new Role({ keyIDs: plan.rootKeys.map((k) => k.keyID), threshold: plan.threshold });
  root.roles[MetadataKind.Targets] = new Role({ keyIDs: plan.targetsKeys.map((k) => k.keyID), threshold: targetsThreshold });
  return new Metadata(root);
}

/** The unsigned director root: the same root keys and threshold; targets, snapshot and timestamp the director's online key. */
export function buildDirectorRoot(plan: Omit<RootPlan, 'targetsKeys' | 'targetsThreshold'>): Metadata<Root> {
  distinctKeys(plan.rootKeys, 'root keys');
  checkThreshold(plan.threshold, plan.rootKeys, 'root');
  const root = new Root({ version: plan.version ?? 1, specVersion: '1.0.31', expires: plan.expires, consistentSnapshot: false });
  for (const key of plan.rootKeys) root.addKey(key, MetadataKind.Root);
  for (const role of [MetadataKind.Targets, MetadataKind.Snapshot, MetadataKind.Timestamp]) root.addKey(plan.online.director, role);
  root.roles[MetadataKind.Root] = new Role({ keyIDs: plan.rootKeys.map((k) => k.keyID), threshold: plan.threshold });
  return new Metadata(root);
}

/**
 * An offline key that signs: a key file opened with its passphrase, or a key on a PKCS#11 token
 * (updates/tuf/token-keys.ts) whose private half never leaves it. Ed25519 either way.
 */
export interface OfflineSigner {
  readonly key: Key;
  /** The 64-byte Ed25519 signature of the canonical bytes given. */
  sign(data: Buffer): Buffer;
}

/** An offline signer over a private key held in memory (opened from its file). */
export function softwareSigner(privateKey: KeyObject): OfflineSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ValidationError('offline keys are Ed25519');
  return { key: publicKeyOf(privateKey), sign: (data) => sign(null, data, privateKey) };
}

/** Appends one signature (replacing an earlier one by the same key). */
export function signWith<M extends Metadata<Root> | Metadata<Targets>>(metadata: M, signer: OfflineSigner): M {
  metadata.sign((data) => new Signature({ keyID: signer.key.keyID, sig: signer.sign(data).toString('hex') }), true);
  return metadata;
}

export interface DelegationPlan {
  productId: string;
  keys: Key[];
  threshold: number;
  expires: string;
}

function checkProductId(productId: string): void {
  if (!PRODUCT_ID_PATTERN.test(productId)) throw new ValidationError(`product ID "${productId}" must be 1-64 letters, digits, "_" or "-"`);
}

/**
 * The next top-level targets (unsigned): `current`'s delegations with the product line's role set to
 * `product-<productId>` over `<productId>/*`, terminating, with the given keys and threshold.
 */
export function delegateProduct(current: Metadata<Targets> | null, plan: DelegationPlan): Metadata<Targets> {
  checkProductId(plan.productId);
  distinctKeys(plan.keys, `keys of ${plan.productId}`);
  checkThreshold(plan.threshold, plan.keys, `delegation of ${plan.productId}`);
  const name = productRoleOf(plan.productId);
  const roles: Record<string, DelegatedRole> = { ...(current?.signed.delegations?.roles ?? {}) };
  roles[name] = new DelegatedRole({
    name,
    keyIDs: plan.keys.map((k) => k.keyID),
    threshold: plan.threshold,
    terminating: true,
    paths: [`${plan.productId}/*`],
  });
  // Keep only the keys some role still uses.
  const previousKeys = current?.signed.delegations?.keys ?? {};
  const keys: Record<string, Key> = {};
  for (const role of Object.values(roles)) {
    for (const id of role.keyIDs) {
      const key = plan.keys.find((k) => k.keyID === id) ?? previousKeys[id];
      if (key) keys[id] = key;
    }
  }
  const targets = new Targets({
    version: (current?.signed.version ?? 0) + 1,
    specVersion: '1.0.31',
    expires: plan.expires,
    targets: current?.signed.targets ?? {},
    delegations: new Delegations({ keys, roles }),
  });
  return new Metadata(targets);
}

export interface ImagePlan extends ImageTargetCustom {
  length: number;
  sha256: string;
  expires: string;
}

/** The next version of a product line's metadata (unsigned) with the image's target added or replaced. */
export function addImageTarget(current: Metadata<Targets> | null, plan: ImagePlan): Metadata<Targets> {
  checkProductId(plan.product);
  if (!/^[0-9a-f]{64}$/.test(plan.sha256)) throw new ValidationError('sha256 must be 64 lowercase hex digits');
  if (!Number.isSafeInteger(plan.length) || plan.length < 0) throw new ValidationError('length must be a whole number of bytes');
  if (!Number.isSafeInteger(plan.securityVersion) || plan.securityVersion < 0)
    throw new ValidationError('securityVersion must be a whole number from 0');
  if (plan.hardwareIds.length === 0 || plan.hardwareIds.some((h) => typeof h !== 'string' || h.length === 0))
    throw new ValidationError('at least one non-empty hardware ID is needed');
  const path = targetNameOf(plan.product, plan.version);
  const custom: ImageTargetCustom = {
    product: plan.product,
    version: plan.version,
    securityVersion: plan.securityVersion,
    hardwareIds: [...plan.hardwareIds],
  };
  const targets = new Targets({
    version: (current?.signed.version ?? 0) + 1,
    specVersion: '1.0.31',
    expires: plan.expires,
    targets: { ...(current?.signed.targets ?? {}) },
  });
  targets.addTarget(
    new TargetFile({
      path,
      length: plan.length,
      hashes: { sha256: plan.sha256 },
      unrecognizedFields: { custom: custom as unknown as Json },
    }),
  );
  return new Metadata(targets);
}

/** Length and SHA-256 of a file, streamed (images may be larger than memory). */
export async function hashFile(path: string): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { length, sha256: hash.digest('hex') };
}

export function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ValidationError(`Cannot read ${path} as JSON: ${(error as Error).message}`);
  }
}

export function readRoot(path: string): Metadata<Root> {
  return readMetadata(path, MetadataKind.Root) as Metadata<Root>;
}

export function readTargets(path: string): Metadata<Targets> {
  return readMetadata(path, MetadataKind.Targets) as Metadata<Targets>;
}

function readMetadata(path: string, kind: MetadataKind.Root | MetadataKind.Targets): Metadata<Root> | Metadata<Targets> {
  const json = readJson(path) as Json;
  try {
    return kind === MetadataKind.Root ? Metadata.fromJSON(MetadataKind.Root, json) : Metadata.fromJSON(MetadataKind.Targets, json);
  } catch (error) {
    throw new ValidationError(`${path} is not TUF ${kind} metadata: ${(error as Error).message}`);
  }
}

/** Reads root or targets metadata, whichever the file holds (for `root sign` over several files). */
export function readAnyMetadata(path: string): Metadata<Root> | Metadata<Targets> {
  const type = ((readJson(path) as { signed?: { _type?: unknown } }).signed ?? {})._type;
  if (type === MetadataKind.Root) return readRoot(path);
  if (type === MetadataKind.Targets) return readTargets(path);
  throw new ValidationError(`${path} holds neither root nor targets metadata`);
}

export function writeMetadata(path: string, metadata: Metadata<Root | Targets>): void {
  writeFileSync(path, JSON.stringify(metadata.toJSON(), null, 2) + '\n', { mode: 0o644 });
}
