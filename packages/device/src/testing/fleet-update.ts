/**
 * For fleet update tests and benchmarks: a platform's firmware repository set up as an
 * organization's offline ceremony would (roots, top-level targets, a product line's release key,
 * from the server's TestCeremony), releases published through the release service (image bytes
 * into the blob store, signed product metadata), rollouts created through the rollout service, and
 * what a factory writes into each device (both roots and the first image) to provision its agent.
 * It calls the services directly as the CLI does, so it serves the test platform and the
 * benchmark platform alike.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Metadata, Targets } from '@tufjs/models';
import { cliActor, type Actor, type Platform, type RolloutInput, signedBy, TestCeremony } from '@bulwark/server/testing';
import type { FactoryImage } from '../sim/update-fleet.js';
import { testImage } from './update-fixture.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] };

export interface PublishedRelease {
  id: string;
  version: string;
  target: string;
  sha256: string;
  length: number;
}

export interface FleetRepository {
  organizationId: string;
  productId: string;
  hardwareId: string;
  actor: Actor;
  /** The factory image every device starts with, and the roots it trusts. */
  factory: FactoryImage;
  publish(version: string, securityVersion: number, imageBytes?: number): Promise<PublishedRelease>;
  /** Creates a rollout (as an operator would); returns its ID. */
  rollout(input: RolloutInput): Promise<string>;
}

export async function setUpFleetRepository(
  platform: Platform,
  organizationId: string,
  productId: string,
  hardwareId: string,
  factoryVersion = '1.0.0',
): Promise<FleetRepository> {
  const actor = cliActor(organizationId, 'fleet-test');
  const ceremony = new TestCeremony(await platform.updates.repository.onlineKeysFor(actor), platform.clock.now());
  const root = signedBy(ceremony.root(), ...ceremony.rootKeys);
  const directorRoot = ceremony.directorRoot();
  await platform.updates.repository.acceptRoot(actor, { root: root.toJSON(), directorRoot: directorRoot.toJSON() });
  await platform.updates.repository.acceptTargets(actor, ceremony.targets([productId]).toJSON());
  let productMetadata: Metadata<Targets> | null = null;
  return {
    organizationId,
    productId,
    hardwareId,
    actor,
    factory: {
      repositoryRoot: Buffer.from(JSON.stringify(root.toJSON())),
      directorRoot: Buffer.from(JSON.stringify(directorRoot.toJSON())),
      productId,
      image: testImage(`fleet-${factoryVersion}`, 4096),
      target: `${productId}/firmware-${factoryVersion}.bin`,
      version: factoryVersion,
      securityVersion: 0,
    },
    async publish(version, securityVersion, imageBytes = 64 * 1024) {
      const image = testImage(`fleet-${version}`, imageBytes);
      const sha256 = createHash('sha256').update(image).digest('hex');
      await platform.updates.blobs.put(Readable.from(image), { sha256, length: image.length });
      productMetadata = ceremony.image(productMetadata, {
        productId,
        version,
        length: image.length,
        sha256,
        securityVersion,
        hardwareIds: [hardwareId],
      });
      const release = await platform.updates.releases.create(actor, {
        productId,
        version,
        notes: `fleet ${version}`,
        sbom: SBOM,
        metadata: productMetadata.toJSON(),
      });
      return { id: release.id, version, target: `${productId}/firmware-${version}.bin`, sha256, length: image.length };
    },
    async rollout(input) {
      return (await platform.updates.rollouts.create(actor, input)).id;
    },
  };
}
