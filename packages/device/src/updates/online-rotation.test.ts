/**
 * An online key rotation as a device lives it: the real agent, pinned to the first roots at the
 * factory, installs a release before the rotation and one after, following the image repository and
 * director root chains by the TUF rules with nothing done on the device; then an attacker holding
 * the retired timestamp, snapshot or director key serves metadata signed with it, and the device
 * refuses each (docs/updates.md, "Rotating the online keys").
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Metadata, MetadataKind, Signature, type Root, type Targets } from '@tufjs/models';
import {
  cliActor,
  organizationIdOf,
  provisionTestDevice,
  type TestDevice,
  ownerSession,
  hardwareProduct,
  signedBy,
  TestCeremony,
  onlineKeysFromJson,
} from '@bulwark/server/testing';
import { IdentityStore } from '../identity.js';
import { startDevicePlatform, tempDir, type DevicePlatform } from '../testing/platform.js';
import { testImage } from '../testing/update-fixture.js';
import { writeIdentity } from '../testing/update-pki.js';
import { UpdateAgent, type AgentOptions } from './agent.js';
import { provisionAgentState } from './provision.js';
import { Slots } from './slots.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] };

describe('update agent across an online key rotation (snapshot, timestamp, director)', () => {
  let p: DevicePlatform;
  let org: string;
  let product: string;
  let token: string;
  let ceremony: TestCeremony;
  let d: TestDevice;
  let options: AgentOptions;
  let productMetadata: Metadata<Targets> | null = null;
  const retired: Record<string, KeyObject> = {};
  const temp = tempDir('agent-online-rotation');

  const post = (path: string, body: unknown) => p.t.client().post(path, body, { token });
  const rootVersion = (dir: string) => JSON.parse(readFileSync(join(options.stateDir, dir, 'root.json'), 'utf8')).signed.version as number;

  before(async () => {
    p = await startDevicePlatform();
    const { t } = p;
    org = await organizationIdOf(t.platform, t.org);
    product = await hardwareProduct(t.platform, org, 'Rotation sensor', 'hw-a');
    // Certificates first: signing in moves the platform clock ahead of the wall clock TLS checks them with.
    d = await provisionTestDevice(t.platform, org, product, 'ROTATION-1');
    ({ token } = await ownerSession(t));
    const keys = await t.client().get('/api/v1/updates/repository/online-keys', { token });
    ceremony = new TestCeremony(onlineKeysFromJson(keys.body), t.clock.now());
    const root = signedBy(ceremony.root(), ...ceremony.rootKeys);
    const directorRoot = ceremony.directorRoot();
    assert.equal((await post('/api/v1/updates/repository/root', { root: root.toJSON(), directorRoot: directorRoot.toJSON() })).status, 200);
    assert.equal((await post('/api/v1/updates/repository/targets', ceremony.targets([product]).toJSON())).status, 200);

    const identityDir = writeIdentity(join(temp.dir, 'identity'), t.ca, { key: d.key, cert: d.cert });
    const stateDir = join(temp.dir, 'state');
    provisionAgentState({
      stateDir,
      repositoryRoot: Buffer.from(JSON.stringify(root.toJSON())),
      directorRoot: Buffer.from(JSON.stringify(directorRoot.toJSON())),
      productId: product,
      image: testImage('rotation-1.0.0'),
      target: `${product}/firmware-1.0.0.bin`,
      version: '1.0.0',
      securityVersion: 0,
    });
    options = {
      stateDir,
      deviceId: d.id,
      hardwareId: 'hw-a',
      organizationId: org,
      baseUrl: p.apiUrl,
      tls: new IdentityStore(identityDir).load(),
      channel: { status: () => undefined, report: () => undefined },
      timeoutMs: 10_000,
      healthTimeoutMs: 10_000,
    };
  });
  after(async () => {
    await p?.close();
    temp.remove();
  });

  /** Publishes a release signed offline and starts a rollout to the device. */
  async function release(version: string, securityVersion: number): Promise<{ sha256: string; rolloutId: string }> {
    const image = testImage(`rotation-${version}`, 60_000);
    const sha256 = createHash('sha256').update(image).digest('hex');
    await p.t.platform.updates.blobs.put(Readable.from(image), { sha256, length: image.length });
    productMetadata = ceremony.image(productMetadata, {
      productId: product,
      version,
      length: image.length,
      sha256,
      securityVersion,
      hardwareIds: ['hw-a'],
    });
    const res = await post('/api/v1/updates/releases', {
      productId: product,
      version,
      notes: 'n',
      sbom: SBOM,
      metadata: productMetadata.toJSON(),
    });
    assert.equal(res.status, 201, res.text);
    const rollout = await post('/api/v1/updates/rollouts', { releaseId: res.body.id, selector: { deviceIds: [d.id] } });
    assert.equal(rollout.status, 201, rollout.text);
    await p.t.platform.updates.rollouts.tick();
    return { sha256, rolloutId: rollout.body.id as string };
  }

  async function install(version: string, securityVersion: number): Promise<void> {
    const { sha256, rolloutId } = await release(version, securityVersion);
    const agent = new UpdateAgent(options);
    await agent.start();
    assert.equal(await agent.check(), 'reboot', agent.lastError?.message);
    assert.equal(await new UpdateAgent(options).start(), 'committed');
    const slots = new Slots(options.stateDir);
    assert.equal(slots.manifest(slots.readBoot().active)?.sha256, sha256);
    // The agent's statuses go nowhere here: end the rollout so the next one may take the device.
    await p.t.platform.updates.rollouts.abort(cliActor(org), rolloutId);
  }

  async function refusedCheck(): Promise<string | undefined> {
    const agent = new UpdateAgent(options);
    await agent.start();
    const result = await agent.check();
    assert.equal(result, 'refused', `expected a refusal, got ${result}`);
    return agent.lastError?.code;
  }

  const signer = (key: KeyObject) => (data: Buffer) =>
    new Signature({
      keyID: Object.values(metadataKeyIds).find((k) => k.key === key)!.id,
      sig: sign(null, data, key).toString('hex'),
    });
  const metadataKeyIds: Record<string, { id: string; key: KeyObject }> = {};

  it('installs a release before the rotation, then rotates all three keys with one offline root signature', async () => {
    await install('2.0.0', 1);
    const purposes = { snapshot: `tuf-snapshot:${org}`, timestamp: `tuf-timestamp:${org}`, director: `director:${org}` };
    const before = await p.t.platform.updates.repository.onlineKeys(org);

    const started = await post('/api/v1/updates/repository/online-keys/rotate', {});
    assert.equal(started.status, 200, started.text);
    const sign = (json: unknown) =>
      signedBy(Metadata.fromJSON(MetadataKind.Root, json as never) as Metadata<Root>, ...ceremony.rootKeys).toJSON();
    const uploaded = await post('/api/v1/updates/repository/root', {
      root: sign(started.body.root),
      directorRoot: sign(started.body.directorRoot),
    });
    assert.equal(uploaded.status, 200, uploaded.text);

    const after = await p.t.platform.updates.repository.onlineKeys(org);
    for (const role of ['snapshot', 'timestamp', 'director'] as const) {
      assert.equal(after[role].keyID, started.body.pending[role].keyid, `${role} switched`);
      // The attacker of the next tests holds every retired key.
      const row = await p.t.platform.db
        .selectFrom('signing_keys')
        .select(['id', 'private_key'])
        .where('purpose', '=', purposes[role])
        .where('retired_at', 'is not', null)
        .executeTakeFirstOrThrow();
      retired[role] = createPrivateKey(p.t.platform.box.openText(row.private_key, `signing-key:${row.id}`));
      metadataKeyIds[role] = { id: before[role].keyID, key: retired[role] };
    }
  });

  it('a device pinned to the first roots follows both root chains and installs the next release', async () => {
    await install('3.0.0', 2);
    assert.equal(rootVersion('tuf'), 2, 'image repository root followed to version 2');
    assert.equal(rootVersion('director'), 2, 'director root followed to version 2');
  });

  it('refuses a newer timestamp signed with the retired timestamp key', async () => {
    const db = p.t.platform.db;
    const current = await db
      .selectFrom('tuf_metadata')
      .selectAll()
      .where('organization_id', '=', org)
      .where('role', '=', 'timestamp')
      .orderBy('version', 'desc')
      .executeTakeFirstOrThrow();
    const json = JSON.parse(current.json);
    const forged = Metadata.fromJSON(MetadataKind.Timestamp, { ...json, signed: { ...json.signed, version: current.version + 1 } });
    forged.signatures = {};
    forged.sign(signer(retired.timestamp!));
    await db
      .insertInto('tuf_metadata')
      .values({ ...current, version: forged.signed.version, json: JSON.stringify(forged.toJSON()) })
      .execute();
    // Written beside the platform, as another process would: served once the platform forgets what it kept (or a second later).
    p.t.platform.updates.repository.metadataChanged(org);
    try {
      assert.equal(await refusedCheck(), 'update.metadata_invalid');
    } finally {
      await db
        .deleteFrom('tuf_metadata')
        .where('organization_id', '=', org)
        .where('role', '=', 'timestamp')
        .where('version', '=', forged.signed.version)
        .execute();
      p.t.platform.updates.repository.metadataChanged(org);
    }
  });

  it('refuses director targets signed with the retired director key, whatever their version', async () => {
    const db = p.t.platform.db;
    const stored = await db.selectFrom('director_targets').selectAll().where('device_id', '=', d.id).executeTakeFirstOrThrow();
    const json = JSON.parse(stored.metadata);
    const forged = Metadata.fromJSON(MetadataKind.Targets, { ...json, signed: { ...json.signed, version: stored.version + 1 } });
    forged.signatures = {};
    forged.sign(signer(retired.director!));
    // The server re-signs whatever its first signature does not credit to the current key: to have the
    // forged document served as it is, the attacker lists the current key's ID first, with a signature
    // that cannot verify, beside the retired key's valid one.
    const current = (await p.t.platform.updates.repository.onlineKeys(org)).director.keyID;
    const served = forged.toJSON() as { signatures: { keyid: string; sig: string }[] };
    served.signatures.unshift({ keyid: current, sig: '00'.repeat(64) });
    await db
      .updateTable('director_targets')
      .set({ version: stored.version + 1, metadata: JSON.stringify(served) })
      .where('device_id', '=', d.id)
      .execute();
    assert.equal(await refusedCheck(), 'update.metadata_invalid');
  });
});
