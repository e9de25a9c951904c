/**
 * The roots an online key rotation needs (docs/updates.md, "Rotating the online keys"): the current
 * root, one version on, with the rotated roles' keys replaced and nothing else changed (same root
 * keys and threshold, same targets keys), unsigned, for the root key holders to sign offline. And the
 * rule that tells, for an uploaded root, which staged keys it activates. Pure: no server, no database.
 */
import { Metadata, Root, type Key } from '@tufjs/models';
// Not re-exported by the package index; the same module instances its parsers use.
import { Role } from '@tufjs/models/dist/role.js';

/** The online roles a rotation can replace: the image repository's snapshot and timestamp, the director's key. */
export const ONLINE_ROLES = ['snapshot', 'timestamp', 'director'] as const;
export type OnlineRole = (typeof ONLINE_ROLES)[number];

/** The roles of a director root, all held by the director's one online key. */
const DIRECTOR_ROOT_ROLES = ['targets', 'snapshot', 'timestamp'] as const;

/** `current` one version on, expiring at `expires`, with each listed role held by the given key alone (threshold 1). Unsigned. */
export function nextRoot(current: Metadata<Root>, replace: Partial<Record<string, Key>>, expires: string): Metadata<Root> {
  const json = current.signed.toJSON();
  const root = Root.fromJSON({ ...json, version: current.signed.version + 1, expires });
  for (const [role, key] of Object.entries(replace)) {
    if (!key) continue;
    root.roles[role] = new Role({ keyIDs: [key.keyID], threshold: 1 });
    root.keys[key.keyID] = key;
  }
  // Keys no role names any more leave the root.
  const used = new Set(Object.values(root.roles).flatMap((r) => r.keyIDs));
  for (const id of Object.keys(root.keys)) if (!used.has(id)) delete root.keys[id];
  return new Metadata(root);
}

/** The next image repository root naming new snapshot and/or timestamp keys. */
export function nextImageRoot(current: Metadata<Root>, keys: { snapshot?: Key; timestamp?: Key }, expires: string): Metadata<Root> {
  return nextRoot(current, { snapshot: keys.snapshot, timestamp: keys.timestamp }, expires);
}

/** The next director root naming a new director key (for its targets, snapshot and timestamp roles). */
export function nextDirectorRoot(current: Metadata<Root>, director: Key, expires: string): Metadata<Root> {
  return nextRoot(current, Object.fromEntries(DIRECTOR_ROOT_ROLES.map((r) => [r, director])), expires);
}

/**
 * Whether an uploaded root's role hands over to the staged key: it must name that key alone, at
 * threshold 1. A root that still names the current key too (or does not name the staged one)
 * leaves the rotation pending, so a key the devices still trust is never retired by the upload.
 */
export function activates(root: Metadata<Root>, role: string, stagedKeyId: string | undefined): boolean {
  const r = root.signed.roles[role];
  return stagedKeyId !== undefined && !!r && r.threshold === 1 && r.keyIDs.length === 1 && r.keyIDs[0] === stagedKeyId;
}
