/**
 * An in-memory image repository ceremony for tests and benchmarks: root, targets and release keys,
 * the signed roots and top-level targets for a set of product lines, and signed product metadata
 * for an image. Built only from the offline library, as an organization's key holders would.
 */
import type { KeyObject } from 'node:crypto';
import type { Key, Metadata, Root, Targets } from '@tufjs/models';
import {
  addImageTarget,
  buildDirectorRoot,
  buildRoot,
  delegateProduct,
  expiresIn,
  newKeyPair,
  signWith,
  softwareSigner,
  type OnlineKeys,
} from '../updates/tuf/offline.js';

export interface KeyHolder {
  privateKey: KeyObject;
  key: Key;
}

export const keyHolder = (): KeyHolder => newKeyPair();

export function signedBy<M extends Metadata<Root> | Metadata<Targets>>(metadata: M, ...holders: KeyHolder[]): M {
  for (const h of holders) signWith(metadata, softwareSigner(h.privateKey));
  return metadata;
}

export class TestCeremony {
  readonly rootKeys = [keyHolder(), keyHolder()];
  targetsKey = keyHolder();
  readonly releaseKeys = [keyHolder(), keyHolder()];

  constructor(
    readonly online: OnlineKeys,
    /** Milliseconds since the epoch the expiries are counted from (the platform clock). */
    readonly now: number,
  ) {}

  /** Root version `version` (root threshold 2), unsigned: each test chooses who signs. */
  root(version = 1, rootKeys = this.rootKeys, targetsKey = this.targetsKey): Metadata<Root> {
    return buildRoot({
      rootKeys: rootKeys.map((h) => h.key),
      threshold: 2,
      targetsKeys: [targetsKey.key],
      online: this.online,
      expires: expiresIn(365, this.now),
      version,
    });
  }

  directorRoot(version = 1): Metadata<Root> {
    return signedBy(
      buildDirectorRoot({
        rootKeys: this.rootKeys.map((h) => h.key),
        threshold: 2,
        online: this.online,
        expires: expiresIn(365, this.now),
        version,
      }),
      ...this.rootKeys,
    );
  }

  /** Top-level targets delegating each product line to the release keys (threshold `threshold`). */
  targets(productIds: string[], current: Metadata<Targets> | null = null, threshold = 1, signer = this.targetsKey): Metadata<Targets> {
    let next = current;
    // Each delegation bumps the version: one upload of several product lines moves it by more than one, which TUF allows.
    for (const productId of productIds)
      next = delegateProduct(next, { productId, keys: this.releaseKeys.map((h) => h.key), threshold, expires: expiresIn(365, this.now) });
    return signedBy(next!, signer);
  }

  /** The product line's next metadata with the image added, signed by `signers` (default: the first release key). */
  image(
    current: Metadata<Targets> | null,
    image: { productId: string; version: string; length: number; sha256: string; securityVersion?: number; hardwareIds?: string[] },
    ...signers: KeyHolder[]
  ): Metadata<Targets> {
    const next = addImageTarget(current, {
      product: image.productId,
      version: image.version,
      securityVersion: image.securityVersion ?? 1,
      hardwareIds: image.hardwareIds ?? ['hw-rev-a'],
      length: image.length,
      sha256: image.sha256,
      expires: expiresIn(365, this.now),
    });
    return signedBy(next, ...(signers.length > 0 ? signers : [this.releaseKeys[0]!]));
  }
}
