/**
 * Factory provisioning of the agent's state directory: the image repository's first trusted root
 * and the director root (both from the factory image, never fetched unauthenticated), the product
 * line the device belongs to (pinned: the agent installs only that product's images), and the
 * first firmware image in slot a, active, with the anti-rollback counter at its securityVersion,
 * and the boot variables' backend (recorded, then set to their factory values).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PRODUCT_ID_PATTERN } from '@bulwark/protocol';
import { Metadata, MetadataKind } from '@tufjs/models';
import { recordBootBackend, type BootBackendSettings } from './boot-backend.js';
import { readJson, writeDurably, writeJsonDurably } from './durable.js';
import { MetadataInvalidError } from './errors.js';
import { Slots, type SlotManifest } from './slots.js';

export interface ProvisionOptions {
  stateDir: string;
  /** The image repository's root metadata (version 1 or any later trusted version). */
  repositoryRoot: Buffer;
  directorRoot: Buffer;
  /** The device's product line: only images its delegated role signs, with this custom.product, are installed. */
  productId: string;
  image: Buffer;
  target: string;
  version: string;
  securityVersion: number;
  /** Where the boot variables live (default `dir`: in the state directory). */
  bootBackend?: BootBackendSettings;
}

/** A setup or pin that cannot be done; the state directory is left as it was. */
export class ProvisionError extends Error {}

const productPath = (stateDir: string): string => join(stateDir, 'product.json');

/** What is wrong with a product ID (it names a delegated role and a path prefix), or null. */
export function productIdProblem(productId: string): string | null {
  return PRODUCT_ID_PATTERN.test(productId) ? null : `product ID "${productId}" must be 1-64 letters, digits, "_" or "-"`;
}

/** The product the state directory pins, or null for one set up before products were pinned. */
export function pinnedProduct(stateDir: string): string | null {
  const productId = readJson<{ productId?: unknown } | null>(productPath(stateDir), null)?.productId;
  return typeof productId === 'string' && productIdProblem(productId) === null ? productId : null;
}

/**
 * Pins the device's product: done by setup, or once on a state directory set up before products
 * were pinned. Never from what the server says (the first image it offers could be another
 * product's), and never changed once pinned.
 */
export function pinProduct(stateDir: string, productId: string): void {
  const problem = productIdProblem(productId);
  if (problem) throw new ProvisionError(problem);
  if (!existsSync(join(stateDir, 'boot.json')))
    throw new ProvisionError(`${stateDir} is not an agent state directory: set it up first (bulwark-agent setup)`);
  const pinned = pinnedProduct(stateDir);
  if (pinned !== null && pinned !== productId)
    throw new ProvisionError(`${stateDir} already pins product ${pinned}; a pinned product is never changed (set the device up again)`);
  if (pinned === null) writeJsonDurably(productPath(stateDir), { productId });
}

/** Refuses bytes that are not a TUF root signed by its own threshold (the first trust a device is given). */
export function checkRoot(bytes: Buffer, what: string): void {
  try {
    const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes.toString('utf8')));
    root.verifyDelegate('root', root);
  } catch (error) {
    throw new MetadataInvalidError(`The ${what} is not a root signed by its own threshold: ${(error as Error).message}`);
  }
}

export function provisionAgentState(options: ProvisionOptions): SlotManifest {
  const problem = productIdProblem(options.productId);
  if (problem) throw new ProvisionError(problem);
  checkRoot(options.repositoryRoot, 'image repository root');
  checkRoot(options.directorRoot, 'director root');
  mkdirSync(join(options.stateDir, 'tuf'), { recursive: true });
  mkdirSync(join(options.stateDir, 'director'), { recursive: true });
  writeDurably(join(options.stateDir, 'tuf', 'root.json'), options.repositoryRoot);
  writeDurably(join(options.stateDir, 'director', 'root.json'), options.directorRoot);
  writeJsonDurably(productPath(options.stateDir), { productId: options.productId });
  recordBootBackend(options.stateDir, options.bootBackend ?? { kind: 'dir' });
  return new Slots(options.stateDir).provision(options.image, {
    target: options.target,
    version: options.version,
    securityVersion: options.securityVersion,
  });
}
