/**
 * Factory provisioning of the agent's state directory: the image repository's first trusted root
 * and the director root (both from the factory image, never fetched unauthenticated), and the
 * first firmware image in slot a, active, with the anti-rollback counter at its securityVersion.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import { writeDurably } from './durable.js';
import { MetadataInvalidError } from './errors.js';
import { Slots, type SlotManifest } from './slots.js';

export interface ProvisionOptions {
  stateDir: string;
  /** The image repository's root metadata (version 1 or any later trusted version). */
  repositoryRoot: Buffer;
  directorRoot: Buffer;
  image: Buffer;
  target: string;
  version: string;
  securityVersion: number;
}

export function provisionAgentState(options: ProvisionOptions): SlotManifest {
  for (const [what, bytes] of [
    ['image repository root', options.repositoryRoot],
    ['director root', options.directorRoot],
  ] as const) {
    try {
      const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes.toString('utf8')));
      root.verifyDelegate('root', root);
    } catch (error) {
      throw new MetadataInvalidError(`The ${what} is not a root signed by its own threshold: ${(error as Error).message}`);
    }
  }
  mkdirSync(join(options.stateDir, 'tuf'), { recursive: true });
  mkdirSync(join(options.stateDir, 'director'), { recursive: true });
  writeDurably(join(options.stateDir, 'tuf', 'root.json'), options.repositoryRoot);
  writeDurably(join(options.stateDir, 'director', 'root.json'), options.directorRoot);
  return new Slots(options.stateDir).provision(options.image, { target: options.target, version: options.version, securityVersion: options.securityVersion });
}
