import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Delegations } from '@tufjs/models/dist/delegations.js';
import { DelegatedRole } from '@tufjs/models/dist/role.js';
import { TufKey } from '../testing/update-fixture.js';
import { useUpdateFixture } from '../testing/update-suite.js';
import { MetadataInvalidError } from './errors.js';
import { ImageRepository } from './repository.js';

/** Delegations of one role each, by name: its key and the paths it may sign. */
function delegations(roles: Record<string, { key: TufKey; paths: string[] }>): Delegations {
  return new Delegations({
    keys: Object.fromEntries(Object.values(roles).map(({ key }) => [key.id, key.key])),
    roles: Object.fromEntries(
      Object.entries(roles).map(([name, { key, paths }]) => [
        name,
        new DelegatedRole({ name, keyIDs: [key.id], threshold: 1, terminating: false, paths }),
      ]),
    ),
  });
}

describe("image repository (tuf-js with the agent's checks)", () => {
  const u = useUpdateFixture('repository');

  it("verifies a delegated role it already trusts against the delegator of each new path: a role name two parents delegate to different keys does not carry one parent's trust into the other's paths", async () => {
    const [parentA, parentB, releaseA, releaseB] = [new TufKey(), new TufKey(), new TufKey(), new TufKey()];
    // "release" is delegated by parent-a (team-a/*, key releaseA) and by parent-b (team-b/*, key releaseB),
    // and signed by releaseA only: valid on parent-a's paths, never on parent-b's.
    u.fixture.publishTree(
      delegations({ 'parent-a': { key: parentA, paths: ['team-a/*'] }, 'parent-b': { key: parentB, paths: ['team-b/*'] } }),
      {
        'parent-a': { delegations: delegations({ release: { key: releaseA, paths: ['team-a/*'] } }), signers: [parentA] },
        'parent-b': { delegations: delegations({ release: { key: releaseB, paths: ['team-b/*'] } }), signers: [parentB] },
        release: {
          images: { 'team-a/image.bin': Buffer.from('trusted A'), 'team-b/image.bin': Buffer.from('malicious B') },
          signers: [releaseA],
        },
      },
    );
    const metadataDir = join(u.temp.dir, 'diamond');
    mkdirSync(metadataDir);
    writeFileSync(join(metadataDir, 'root.json'), u.fixture.initialRoot);
    const device = await u.pki.device('dev-diamond');
    const repository = ImageRepository.ofPlatform({
      baseUrl: u.fixture.baseUrl,
      organizationId: u.fixture.org,
      metadataDir,
      tls: { ca: u.pki.ca, ...device },
    });

    assert.equal((await repository.target('team-a/image.bin'))?.file.length, 'trusted A'.length);
    await assert.rejects(
      repository.target('team-b/image.bin'),
      (error: Error) => error instanceof MetadataInvalidError && /release is not signed by the threshold of parent-b/.test(error.message),
    );
  });
});
