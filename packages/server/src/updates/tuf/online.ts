/**
 * Snapshot and timestamp metadata, signed by the server's online keys: the snapshot lists the
 * current version of the top-level targets and of every product line's metadata, the timestamp
 * names the snapshot with its length and SHA-256.
 */
import { createHash } from 'node:crypto';
import { MetaFile, Metadata, Signature, Snapshot, Timestamp } from '@tufjs/models';
import type { SigningKey } from '../../keys/signing-keys.js';
import { tufKeyOf } from './keys.js';
import { tufTime } from './verify.js';

/** A `Metadata.sign` signer from an online signing key (which signs to base64; TUF wants hex). */
export function onlineSigner(key: SigningKey): (data: Buffer) => Signature {
  const keyID = tufKeyOf(key.publicKey).keyID;
  return (data) => new Signature({ keyID, sig: Buffer.from(key.sign(data), 'base64').toString('hex') });
}

export interface SignedFile {
  version: number;
  json: string;
  expiresAt: number;
}

function expiry(now: number, seconds: number): { expires: string; expiresAt: number } {
  const expires = tufTime(now + seconds * 1000);
  return { expires, expiresAt: Date.parse(expires) };
}

/** The snapshot: `targets.json` and each `<role>.json` of the product lines at their current versions. */
export function signSnapshot(
  key: SigningKey,
  version: number,
  roles: Record<string, number>,
  now: number,
  lifetimeSeconds: number,
): SignedFile {
  const { expires, expiresAt } = expiry(now, lifetimeSeconds);
  const meta = Object.fromEntries(Object.entries(roles).map(([role, v]) => [`${role}.json`, new MetaFile({ version: v })]));
  const metadata = new Metadata(new Snapshot({ version, specVersion: '1.0.31', expires, meta }));
  metadata.sign(onlineSigner(key));
  return { version, json: JSON.stringify(metadata.toJSON()), expiresAt };
}

/** The timestamp over the exact snapshot bytes served. */
export function signTimestamp(
  key: SigningKey,
  version: number,
  snapshot: { version: number; json: string },
  now: number,
  lifetimeSeconds: number,
): SignedFile {
  const { expires, expiresAt } = expiry(now, lifetimeSeconds);
  const bytes = Buffer.from(snapshot.json, 'utf8');
  const snapshotMeta = new MetaFile({
    version: snapshot.version,
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
  });
  const metadata = new Metadata(new Timestamp({ version, specVersion: '1.0.31', expires, snapshotMeta }));
  metadata.sign(onlineSigner(key));
  return { version, json: JSON.stringify(metadata.toJSON()), expiresAt };
}
