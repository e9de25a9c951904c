import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Metadata, Targets } from '@tufjs/models';
import { tufTargetsPath, UPDATE_METADATA_PATH, UPDATE_TOPICS, type SignedVersionReport, type UpdateStatus } from '@bulwark/protocol';
import {
  organizationIdOf,
  provisionTestDevice,
  type TestDevice,
  connectDevice,
  eventually,
  inbox,
  ownerSession,
  hardwareProduct,
  signedBy,
  TestCeremony,
  onlineKeysFromJson,
} from '@bulwark/server/testing';
import { DeviceClient } from '../client.js';
import { IdentityStore } from '../identity.js';
import { startDevicePlatform, tempDir, type DevicePlatform } from '../testing/platform.js';
import { testImage } from '../testing/update-fixture.js';
import { writeIdentity } from '../testing/update-pki.js';
import { UpdateAgent, type AgentOptions, type UpdateChannel } from './agent.js';
import { mqttUpdateChannel, onUpdatesAvailable, type UpdateMessagingClient } from './mqtt-channel.js';
import { provisionAgentState } from './provision.js';
import { Slots } from './slots.js';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] };
/** DeviceClient.publish/onTopic are the SDK change the MQTT channel needs (see mqtt-channel.ts). */
const CLIENT_HAS_TOPICS = typeof (DeviceClient.prototype as unknown as Partial<UpdateMessagingClient>).onTopic === 'function';

describe('update agent against the real platform (image repository, director, rollout)', () => {
  let p: DevicePlatform;
  let org: string;
  let product: string;
  let token: string;
  let ceremony: TestCeremony;
  let rootBytes: Buffer;
  let directorRootBytes: Buffer;
  let productMetadata: Metadata<Targets> | null = null;
  const temp = tempDir('agent-platform');
  let serial = 0;
  const devices: TestDevice[] = [];

  const post = (path: string, body: unknown) => p.t.client().post(path, body, { token });

  before(async () => {
    p = await startDevicePlatform();
    const { t } = p;
    org = await organizationIdOf(t.platform, t.org);
    product = await hardwareProduct(t.platform, org, 'Agent sensor', 'hw-a');
    // Certificates first: signing in moves the platform clock ahead of the wall clock the broker checks them with.
    for (let i = 0; i < 2; i++) devices.push(await provisionTestDevice(t.platform, org, product, `AGENT-${i}`));
    ({ token } = await ownerSession(t));
    const keys = await t.client().get('/api/v1/updates/repository/online-keys', { token });
    assert.equal(keys.status, 200, keys.text);
    ceremony = new TestCeremony(onlineKeysFromJson(keys.body), t.clock.now());
    const root = signedBy(ceremony.root(), ...ceremony.rootKeys);
    const directorRoot = ceremony.directorRoot();
    const rootRes = await post('/api/v1/updates/repository/root', { root: root.toJSON(), directorRoot: directorRoot.toJSON() });
    assert.equal(rootRes.status, 200, rootRes.text);
    const targetsRes = await post('/api/v1/updates/repository/targets', ceremony.targets([product]).toJSON());
    assert.equal(targetsRes.status, 200, targetsRes.text);
    rootBytes = Buffer.from(JSON.stringify(root.toJSON()));
    directorRootBytes = Buffer.from(JSON.stringify(directorRoot.toJSON()));
  });
  after(async () => {
    await p?.close();
    temp.remove();
  });

  /** Uploads the image and publishes it as a release, signed offline by the ceremony's release key. */
  async function publish(version: string, securityVersion: number): Promise<{ id: string; sha256: string }> {
    const image = testImage(`platform-${version}`, 80_000);
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
    const release = await post('/api/v1/updates/releases', {
      productId: product,
      version,
      notes: 'n',
      sbom: SBOM,
      metadata: productMetadata.toJSON(),
    });
    assert.equal(release.status, 201, release.text);
    return { id: release.body.id as string, sha256 };
  }

  async function startRollout(releaseId: string, deviceId: string): Promise<string> {
    const rollout = await post('/api/v1/updates/rollouts', { releaseId, selector: { deviceIds: [deviceId] } });
    assert.equal(rollout.status, 201, rollout.text);
    await p.t.platform.updates.rollouts.tick();
    return rollout.body.id as string;
  }

  /** A device of the product with its identity directory and agent state (factory image 1.0.0). */
  async function device(): Promise<{ device: TestDevice; identityDir: string; stateDir: string }> {
    const d = devices[serial++]!;
    const identityDir = writeIdentity(join(temp.dir, `identity-${serial}`), p.t.ca, { key: d.key, cert: d.cert });
    const stateDir = join(temp.dir, `state-${serial}`);
    provisionAgentState({
      stateDir,
      repositoryRoot: rootBytes,
      directorRoot: directorRootBytes,
      productId: product,
      image: testImage('platform-1.0.0'),
      target: `${product}/firmware-1.0.0.bin`,
      version: '1.0.0',
      securityVersion: 0,
    });
    return { device: d, identityDir, stateDir };
  }

  const agentOptions = (d: TestDevice, identityDir: string, stateDir: string, channel: UpdateChannel): AgentOptions => ({
    stateDir,
    deviceId: d.id,
    hardwareId: 'hw-a',
    organizationId: org,
    baseUrl: p.apiUrl,
    tls: new IdentityStore(identityDir).load(),
    channel,
    timeoutMs: 10_000,
    healthTimeoutMs: 10_000,
  });

  async function succeeded(deviceId: string, version: string): Promise<void> {
    await eventually(
      async () => {
        const row = await p.t.platform.db
          .selectFrom('rollout_devices')
          .select('state')
          .where('device_id', '=', deviceId)
          .executeTakeFirst();
        return row?.state === 'succeeded';
      },
      5_000,
      'the rollout counts the device as succeeded',
    );
    const stored = await p.t.platform.db
      .selectFrom('device_version_reports')
      .select(['report'])
      .where('device_id', '=', deviceId)
      .executeTakeFirstOrThrow();
    assert.equal(JSON.parse(stored.report).running.version, version);
  }

  it('installs the release its rollout names, verified through the platform’s TUF repository and director, and the platform accepts its statuses and signed report', async () => {
    const { device: d, identityDir, stateDir } = await device();
    const release = await publish('2.0.0', 2);
    const rolloutId = await startRollout(release.id, d.id);

    // The agent's messages go to the platform's broker over the device's own mutual-TLS connection.
    const mqtt = await connectDevice(p.t.server.mqtt!.port, p.t.ca, d, d.id);
    const refusals = inbox(mqtt);
    await mqtt.subscribeAsync(`d/${d.id}/errors`, { qos: 1 });
    const statuses: UpdateStatus[] = [];
    const reports: SignedVersionReport[] = [];
    const send = async (suffix: string, body: unknown) =>
      void (await mqtt.publishAsync(`d/${d.id}/${suffix}`, JSON.stringify(body), { qos: 1 }));
    const options = agentOptions(d, identityDir, stateDir, {
      status: (s) => (statuses.push(s), send(UPDATE_TOPICS.status, s)),
      report: (r) => (reports.push(r), send(UPDATE_TOPICS.report, r)),
    });

    const first = new UpdateAgent(options);
    assert.equal(await first.start(), 'normal');
    // What the agent asks of the platform's HTTPS port: the check's one request, then the image.
    const requested: string[] = [];
    const log = (request: IncomingMessage) => requested.push(new URL(request.url ?? '/', 'https://x').pathname);
    p.t.server.app.server.on('request', log);
    assert.equal(await first.check(), 'reboot', first.lastError?.message);
    assert.equal(requested.length, 2, requested.join(', '));
    assert.equal(requested[0], UPDATE_METADATA_PATH);
    assert.ok(requested[1]!.startsWith(tufTargetsPath(org)) && requested[1]!.includes(release.sha256), requested[1]);
    assert.equal(await new UpdateAgent(options).start(), 'committed');
    const slots = new Slots(stateDir);
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    assert.equal(slots.manifest('b')?.sha256, release.sha256);
    assert.equal(slots.counter(), 2);
    assert.deepEqual(
      statuses.map((s) => `${s.state} ${s.rolloutId}`),
      ['downloading', 'installing', 'rebooting', 'verifying', 'succeeded'].map((state) => `${state} ${rolloutId}`),
    );
    const again = new UpdateAgent(options);
    await again.start();
    requested.length = 0;
    assert.equal(await again.check(), 'up_to_date');
    assert.deepEqual(requested, [UPDATE_METADATA_PATH], 'a check with nothing to install is one request');
    p.t.server.app.server.off('request', log);
    await succeeded(d.id, '2.0.0');
    assert.deepEqual(refusals, []);
    // The reboot it reported counts towards its behaviour (anomaly detection, docs/assessment.md).
    await p.t.platform.assessment.anomaly.recorder.flush();
    const behaviour = await p.t.platform.db
      .selectFrom('device_behaviour_minutes')
      .select(['reboots', 'update_failures'])
      .where('device_id', '=', d.id)
      .execute();
    assert.deepEqual([behaviour.reduce((n, r) => n + r.reboots, 0), behaviour.reduce((n, r) => n + r.update_failures, 0)], [1, 0]);
    mqtt.end(true);
  });

  it(
    'through the SDK client: starts on the updates/available hint and commits once the platform acknowledged its version report',
    { skip: !CLIENT_HAS_TOPICS && 'needs DeviceClient.publish and onTopic' },
    async () => {
      const { device: d, identityDir, stateDir } = await device();
      const client = DeviceClient.fromIdentity(identityDir, { brokerUrl: p.brokerUrl });
      const messaging = client as unknown as UpdateMessagingClient;
      const hints: string[] = [];
      onUpdatesAvailable(messaging, (rolloutId) => hints.push(rolloutId));
      await client.connect();
      try {
        const release = await publish('3.0.0', 3);
        const rolloutId = await startRollout(release.id, d.id);
        await eventually(() => hints.includes(rolloutId), 5_000, 'the updates/available hint arrives');
        const options = agentOptions(d, identityDir, stateDir, mqttUpdateChannel(messaging, 5_000));
        const agent = new UpdateAgent(options);
        await agent.start();
        assert.equal(await agent.check(), 'reboot', agent.lastError?.message);
        assert.equal(await new UpdateAgent(options).start(), 'committed');
        await succeeded(d.id, '3.0.0');
      } finally {
        await client.stop();
      }
    },
  );
});
