/**
 * The rules the image repository applies before it accepts offline-signed metadata (pure: the
 * repository passes in what is current). Roots follow the TUF rotation rule (5.3.4): exactly one
 * version more, signed by the previous root's threshold and by its own. Top-level targets must be
 * signed by the root's targets keys; a product line's metadata by the keys its delegation names,
 * with every target inside the delegated paths. Versions only increase; nothing expired is accepted.
 */
import type { Metadata, Root, Targets } from '@tufjs/models';
import { PRODUCT_ID_PATTERN, productRoleOf } from '@bulwark/protocol';
import { MetadataRejectedError, OnlineKeyMismatchError } from '../errors.js';
import { checkKeys, checkRole, checkUnexpired, verifyThreshold } from './verify.js';

const TOP_LEVEL_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
const SHA256 = /^[0-9a-f]{64}$/;

function checkRootShape(root: Metadata<Root>, what: string): void {
  checkKeys(root.signed.keys, what);
  for (const name of TOP_LEVEL_ROLES) {
    const role = root.signed.roles[name];
    if (!role) throw new MetadataRejectedError(`${what} defines no ${name} role`, { reason: 'keys' });
    checkRole(role, root.signed.keys, `${what}, ${name} role,`);
  }
}

function checkVersionAfter(version: number, previous: number | null, what: string, exact: boolean): void {
  if (previous === null) return;
  if (exact ? version !== previous + 1 : version <= previous) {
    throw new MetadataRejectedError(
      `${what} has version ${version} but the current one is ${previous}: ${exact ? `a new root must be version ${previous + 1}` : 'the version must increase'}`,
      {
        reason: 'version',
        version,
        current: previous,
      },
    );
  }
}

/** An image repository or director root, checked against the current one of the same kind (or as the first). */
export function checkRoot(next: Metadata<Root>, current: Metadata<Root> | null, now: number, what: string): void {
  checkRootShape(next, what);
  if (current === null) {
    if (next.signed.version !== 1)
      throw new MetadataRejectedError(`${what} is the first root of this repository: it must be version 1, not ${next.signed.version}`, {
        reason: 'version',
      });
  } else {
    checkVersionAfter(next.signed.version, current.signed.version, what, true);
    // TUF 5.3.4: the keys trusted so far must approve the new root…
    verifyThreshold(next, current.signed.roles.root!, current.signed.keys, what, `previous root (version ${current.signed.version})`);
  }
  // …and so must the keys it names, so a root nobody can sign for is never trusted.
  verifyThreshold(next, next.signed.roles.root!, next.signed.keys, what, 'its own root');
  checkUnexpired(next, now, what);
}

/** The image repository root must use consistent snapshots (the only file names served) and name this server's online keys. */
export function checkImageRoot(root: Metadata<Root>, online: { snapshot: string; timestamp: string }): void {
  if (!root.signed.consistentSnapshot)
    throw new MetadataRejectedError('The root must set consistent_snapshot: the repository serves versioned metadata file names only', {
      reason: 'malformed',
    });
  for (const name of ['snapshot', 'timestamp'] as const) {
    const role = root.signed.roles[name]!;
    if (!role.keyIDs.includes(online[name]) || role.threshold !== 1) {
      throw new OnlineKeyMismatchError(
        `The root's ${name} role (keys ${role.keyIDs.join(', ')}, threshold ${role.threshold}) does not name this server's ${name} key ${online[name]} at threshold 1: ` +
          'fetch the current keys with `bulwark firmware online-keys` (or GET /api/v1/updates/repository/online-keys) and run the root ceremony again',
        { role: name, serverKeyId: online[name], rootKeyIds: role.keyIDs },
      );
    }
  }
}

/** The director root: the image repository root's root keys and threshold, and the director's online key for targets. */
export function checkDirectorRoot(next: Metadata<Root>, imageRoot: Metadata<Root>, directorKeyId: string): void {
  const own = next.signed.roles.root!;
  const image = imageRoot.signed.roles.root!;
  const same =
    own.threshold === image.threshold && own.keyIDs.length === image.keyIDs.length && own.keyIDs.every((id) => image.keyIDs.includes(id));
  if (!same)
    throw new MetadataRejectedError("The director root's root role must have the image repository root's keys and threshold", {
      reason: 'keys',
    });
  const targets = next.signed.roles.targets!;
  if (!targets.keyIDs.includes(directorKeyId) || targets.threshold !== 1) {
    throw new OnlineKeyMismatchError(
      `The director root's targets role does not name this server's director key ${directorKeyId} at threshold 1: fetch the current keys with \`bulwark firmware online-keys\` and run the root ceremony again`,
      { role: 'director', serverKeyId: directorKeyId, rootKeyIds: targets.keyIDs },
    );
  }
}

/** Top-level targets: signed by the root's targets role; delegations only to product lines, nothing else. */
export function checkTopLevelTargets(next: Metadata<Targets>, root: Metadata<Root>, current: Metadata<Targets> | null, now: number): void {
  const what = 'The top-level targets';
  verifyThreshold(next, root.signed.roles.targets!, root.signed.keys, what, "root's targets");
  checkVersionAfter(next.signed.version, current?.signed.version ?? null, what, false);
  checkUnexpired(next, now, what);
  if (Object.keys(next.signed.targets).length > 0)
    throw new MetadataRejectedError(`${what} must list no images itself: images belong to the product lines' delegated metadata`, {
      reason: 'delegation',
    });
  const delegations = next.signed.delegations;
  if (!delegations) return;
  if (delegations.succinctRoles || !delegations.roles)
    throw new MetadataRejectedError(`${what} may only delegate by named roles (product-<productId>)`, { reason: 'delegation' });
  checkKeys(delegations.keys, `${what}' delegation keys`);
  for (const [name, role] of Object.entries(delegations.roles)) {
    const productId = name.startsWith('product-') ? name.slice('product-'.length) : '';
    if (!PRODUCT_ID_PATTERN.test(productId))
      throw new MetadataRejectedError(`${what} delegates to "${name}": only product-<productId> roles are allowed`, {
        reason: 'delegation',
        role: name,
      });
    const paths = role.paths ?? [];
    if (role.pathHashPrefixes || paths.length !== 1 || paths[0] !== `${productId}/*` || !role.terminating) {
      throw new MetadataRejectedError(`${what}: the delegation ${name} must be terminating with exactly the path "${productId}/*"`, {
        reason: 'delegation',
        role: name,
      });
    }
    checkRole(role, delegations.keys, `${what}, delegation ${name},`);
  }
}

/**
 * A product line's delegated targets: signed at the threshold of the keys the top-level targets
 * delegate to it; every target inside `<productId>/*` with a length and SHA-256; no further delegation.
 */
export function checkProductMetadata(
  next: Metadata<Targets>,
  productId: string,
  topLevel: Metadata<Targets>,
  current: Metadata<Targets> | null,
  now: number,
): void {
  const name = productRoleOf(productId);
  const what = `The ${name} metadata`;
  const delegation = topLevel.signed.delegations?.roles?.[name];
  if (!delegation) {
    throw new MetadataRejectedError(
      `The top-level targets delegate no role ${name}: add it with \`bulwark firmware delegate --product ${productId}\` and upload the new top-level targets first`,
      { reason: 'delegation', role: name },
    );
  }
  verifyThreshold(next, delegation, topLevel.signed.delegations!.keys, what, `${name} release`);
  checkVersionAfter(next.signed.version, current?.signed.version ?? null, what, false);
  checkUnexpired(next, now, what);
  if (next.signed.delegations) throw new MetadataRejectedError(`${what} must not delegate further`, { reason: 'delegation' });
  for (const [path, target] of Object.entries(next.signed.targets)) {
    const rest = path.startsWith(`${productId}/`) ? path.slice(productId.length + 1) : null;
    if (rest === null || rest.length === 0 || rest.includes('/') || rest === '.' || rest === '..' || !delegation.isDelegatedPath(path)) {
      throw new MetadataRejectedError(`${what} lists the target "${path}", outside the delegated path ${productId}/*`, {
        reason: 'path',
        target: path,
      });
    }
    if (!SHA256.test(target.hashes.sha256 ?? ''))
      throw new MetadataRejectedError(`${what}: the target "${path}" needs a sha256 hash (64 lowercase hex digits)`, {
        reason: 'target',
        target: path,
      });
    if (!Number.isSafeInteger(target.length) || target.length < 0)
      throw new MetadataRejectedError(`${what}: the target "${path}" needs a whole-number length`, { reason: 'target', target: path });
  }
}
