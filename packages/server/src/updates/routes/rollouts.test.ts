import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { MqttClient } from 'mqtt';
import { Metadata, MetadataKind, type Root, type Targets } from '@tufjs/models';
import {
  BUNDLED_ROOTS,
  DIRECTOR_ROOT_PATH,
  DIRECTOR_TARGETS_PATH,
  directorRootPath,
  tufMetadataPath,
  UPDATE_METADATA_PATH,
  type UpdateMetadata,
  type VersionReport,
} from '@bulwark/protocol';
import { cliActor } from '../../accounts/roles.js';
import { createOperator, signIn } from '../../testing/accounts.js';
import { ENGINES } from '../../testing/engines.js';
import { organizationIdOf, provisionTestDevice, type TestDevice } from '../../testing/devices.js';
import { connectDevice, eventually, inbox } from '../../testing/mqtt.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';
import { hardwareProduct, insertRelease, ROLLOUTS_TICKED_BY_TEST, signedReport, type TestRelease } from '../../testing/rollout-fixtures.js';
import { keyHolder, signedBy, TestCeremony, type KeyHolder } from '../../testing/tuf-ceremony.js';
import { tufKeyOf } from '../tuf/keys.js';
import { buildDirectorRoot, expiresIn } from '../tuf/offline.js';

/** Director targets metadata as a TUF client parses it. */
function targetsMetadata(json: unknown): Metadata<Targets> {
  return Metadata.fromJSON(MetadataKind.Targets, json as Record<string, never>);
}

/** A GET over mutual TLS with the device's own key and certificate (or none). */
function deviceGet(
  port: number,
  ca: string,
  device: { key: string; cert: string } | null,
  path: string,
): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: 'localhost', port, path, method: 'GET', ca, agent: false, ...(device ? { key: device.key, cert: device.cert } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text || 'null'), text });
        });
      },
    );
    request.on('error', reject);
    request.end();
  });
}

const ORG_B = 'rollout-org-b';

for (const engine of ENGINES) {
  describe(`director and rollout routes over HTTPS and MQTT [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let token: string;
    let tokenB: string;
    let release: TestRelease;
    const d: TestDevice[] = [];
    const clients: MqttClient[] = [];

    before(async () => {
      // The tests tick rollouts themselves: the server's own tick would offer devices between their steps.
      t = await startTestPlatform(engine, { ...ROLLOUTS_TICKED_BY_TEST, mqtt: { port: 0, watchIntervalMs: 100 } });
      org = await organizationIdOf(t.platform, t.org);
      const product = await hardwareProduct(t.platform, org, 'Routed sensor');
      release = await insertRelease(t.platform, org, product, '3.1.0');
      // Certificates first: signing in moves the platform clock ahead of the wall clock.
      for (let i = 0; i < 10; i++) d.push(await provisionTestDevice(t.platform, org, product, `RR-${i}`));
      ({ token } = await ownerSession(t));
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await t?.close();
    });

    const api = () => t.client();
    const get = (device: TestDevice | null, path: string) => deviceGet(t.server.port, t.ca, device, path);
    const create = (deviceIds: string[], extra: object = {}) =>
      api().post('/api/v1/updates/rollouts', { releaseId: release.id, selector: { deviceIds }, ...extra }, { token });
    async function online(device: TestDevice) {
      const client = await connectDevice(t.server.mqtt!.port, t.ca, device, device.id);
      clients.push(client);
      const messages = inbox(client);
      await client.subscribeAsync([`d/${device.id}/updates/#`, `d/${device.id}/errors`], { qos: 1 });
      return { client, messages };
    }

    it('serves each device its own signed director metadata over mutual TLS; quarantined devices keep the path, disabled ones and callers without a certificate are refused', async () => {
      const [a, b, c] = [d[0]!, d[1]!, d[2]!];
      const anonymous = await get(null, DIRECTOR_TARGETS_PATH);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'device.certificate_required');
      const root = await get(a, DIRECTOR_ROOT_PATH);
      assert.equal(root.status, 404);
      assert.equal(root.body.error.code, 'update.no_director_root');

      const created = await create([a.id, b.id, c.id]);
      assert.equal(created.status, 201, created.text);
      await t.platform.updates.rollouts.tick();
      const key = tufKeyOf((await t.platform.updates.director.key(org)).publicKey);
      const fetched = await get(a, DIRECTOR_TARGETS_PATH);
      assert.equal(fetched.status, 200, JSON.stringify(fetched.body));
      const metadata = targetsMetadata(fetched.body);
      key.verifySignature(metadata);
      assert.deepEqual(metadata.signed.targets[release.targetName]!.custom, {
        deviceId: a.id,
        hardwareId: 'hw-a',
        rolloutId: created.body.id,
      });

      await t.platform.devices.service.transition(cliActor(org, 'test'), b.id, 'quarantine', 'investigating');
      const quarantined = await get(b, DIRECTOR_TARGETS_PATH);
      assert.equal(quarantined.status, 200);
      assert.equal(targetsMetadata(quarantined.body).signed.targets[release.targetName]!.custom.deviceId, b.id);

      await t.platform.devices.service.transition(cliActor(org, 'test'), c.id, 'disable', 'stolen');
      const disabled = await get(c, DIRECTOR_TARGETS_PATH);
      assert.equal(disabled.status, 401);
      assert.equal(disabled.body.error.code, 'device.auth_failed');
      assert.equal((await api().post(`/api/v1/updates/rollouts/${created.body.id}/abort`, undefined, { token })).status, 200);
    });

    it('refuses the next request of a kept-alive connection once its certificate is revoked or its device disabled, though both were proved on it just before', async () => {
      const [revoked, disabled] = [d[8]!, d[9]!];
      for (const [device, cutOff] of [
        [
          revoked,
          () =>
            t.platform.pki.revoke(
              { organizationId: org, serial: revoked.certSerial, reason: 'keyCompromise' },
              { type: 'cli', id: 'test' },
            ),
        ],
        [disabled, () => t.platform.devices.service.transition(cliActor(org, 'test'), disabled.id, 'disable', 'stolen')],
      ] as const) {
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1, key: device.key, cert: device.cert, ca: t.ca });
        try {
          const fetch = () =>
            new Promise<{ status: number; reused: boolean; body: any }>((resolve, reject) => {
              const request = https.get({ host: 'localhost', port: t.server.port, path: DIRECTOR_TARGETS_PATH, agent }, (response) => {
                const chunks: Buffer[] = [];
                response.on('data', (c: Buffer) => chunks.push(c));
                response.on('end', () =>
                  resolve({
                    status: response.statusCode ?? 0,
                    reused: request.reusedSocket,
                    body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
                  }),
                );
              });
              request.on('error', reject);
            });
          assert.equal((await fetch()).status, 200);
          assert.equal((await fetch()).status, 200);
          await cutOff();
          const refused = await fetch();
          assert.equal(refused.reused, true, 'the same TLS connection');
          assert.equal(refused.status, 401);
          assert.equal(refused.body.error.code, 'device.auth_failed');
        } finally {
          agent.destroy();
        }
      }
    });

    /** The image and director roots this suite has uploaded: each version's root keys. */
    let chain: { ceremony: TestCeremony; keys: KeyHolder[][] } | null = null;
    /**
     * Uploads the next `count` versions of the image and director roots, each with new root keys. Version 1 is
     * signed by its own keys; each rotation by the previous keys and the new ones (TUF 5.3.4). Returns the director roots.
     */
    async function rotateRoots(count: number): Promise<Record<string, unknown>[]> {
      chain ??= { ceremony: new TestCeremony(await t.platform.updates.repository.onlineKeys(org), t.clock.now()), keys: [] };
      const { ceremony, keys } = chain;
      const uploaded: Record<string, unknown>[] = [];
      for (let n = 0; n < count; n++) {
        const version = keys.length + 1;
        const rootKeys = version === 1 ? ceremony.rootKeys : [keyHolder(), keyHolder()];
        const signers = version === 1 ? rootKeys : [...keys.at(-1)!, ...rootKeys];
        const directorRoot = buildDirectorRoot({
          rootKeys: rootKeys.map((h) => h.key),
          threshold: 2,
          online: ceremony.online,
          expires: expiresIn(365, ceremony.now),
          version,
        });
        const director = signedBy(directorRoot, ...signers).toJSON() as Record<string, unknown>;
        await t.platform.updates.repository.acceptRoot(cliActor(org, 'test'), {
          root: signedBy(ceremony.root(version, rootKeys), ...signers).toJSON(),
          directorRoot: director,
        });
        keys.push(rootKeys);
        uploaded.push(director);
      }
      return uploaded;
    }

    it('serves every director root version over mutual TLS, so a device two rotations behind walks the chain, each verifying under the one before', async () => {
      const a = d[0]!;
      const uploaded = await rotateRoots(3);

      const served: Metadata<Root>[] = [];
      for (let version = 1; version <= 3; version++) {
        const res = await get(a, directorRootPath(version));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(res.body, uploaded[version - 1], `version ${version} is served as uploaded`);
        served.push(Metadata.fromJSON(MetadataKind.Root, res.body as Parameters<typeof Metadata.fromJSON>[1]));
      }
      served[0]!.verifyDelegate(MetadataKind.Root, served[1]!);
      served[1]!.verifyDelegate(MetadataKind.Root, served[2]!);
      assert.throws(
        () => served[0]!.verifyDelegate(MetadataKind.Root, served[2]!),
        'version 3 does not verify under version 1: the device needs version 2',
      );
      assert.equal((await get(a, DIRECTOR_ROOT_PATH)).body.signed.version, 3, 'root.json stays the newest');

      const unknown = await get(a, directorRootPath(4));
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'update.no_director_root');
      for (const file of ['0.root.json', 'x.root.json', '1.targets.json', '01.root.json'])
        assert.equal((await get(a, `/device/v1/updates/director/${file}`)).status, 404, file);
      const anonymous = await get(null, directorRootPath(1));
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'device.certificate_required');
    });

    it('serves all an update check reads in one answer, each file byte for byte as its own route serves it, the roots after those the device trusts; refuses a bad query and a caller without a certificate', async () => {
      // After the test above: director and image roots 1 to 3.
      const a = d[0]!;
      const check = (query: string) => get(a, `${UPDATE_METADATA_PATH}?${query}`);
      const answer = await check('directorRoot=1&root=1&product=routed-sensor');
      assert.equal(answer.status, 200, answer.text);
      const metadata = answer.body as UpdateMetadata;
      assert.equal(metadata.director.latestRoot, 3);
      assert.equal(metadata.director.roots.length, 2, 'the director roots after version 1');
      for (const [i, version] of [2, 3].entries())
        assert.deepEqual(
          JSON.parse(metadata.director.roots[i]!),
          (await get(a, directorRootPath(version))).body,
          `director root ${version}`,
        );
      assert.equal(metadata.director.targets, (await get(a, DIRECTOR_TARGETS_PATH)).text, 'the director targets, byte for byte');
      assert.equal(metadata.repository.latestRoot, 3);
      const names = Object.keys(metadata.repository.files);
      assert.ok(names.includes('2.root.json') && names.includes('3.root.json') && !names.includes('1.root.json'), names.join(', '));
      for (const name of names) {
        const alone = await get(null, `${tufMetadataPath(org)}${name}`);
        assert.equal(alone.status, 200, name);
        assert.equal(metadata.repository.files[name], alone.text, `${name}, byte for byte`);
      }
      const timestamp = await get(null, `${tufMetadataPath(org)}timestamp.json`);
      assert.equal(
        names.includes('timestamp.json'),
        timestamp.status === 200,
        'the timestamp comes with the answer when the repository has one',
      );

      const current = await check('directorRoot=3&root=3');
      assert.equal(current.status, 200, current.text);
      assert.deepEqual(current.body.director.roots, []);
      assert.deepEqual(
        Object.keys(current.body.repository.files).filter((name: string) => name.endsWith('.root.json')),
        [],
        'no root for a device that trusts the latest',
      );

      for (const [query, field] of [
        ['root=1', 'directorRoot'],
        ['directorRoot=0&root=1', 'directorRoot'],
        ['directorRoot=1&root=x', 'root'],
        ['directorRoot=1&root=1&product=../other', 'product'],
        ['directorRoot=1&root=1&snapshot=-2', 'snapshot'],
      ] as const) {
        const refused = await check(query);
        assert.equal(refused.status, 400, `${query}: ${refused.text}`);
        assert.equal(refused.body.error.code, 'request.invalid', query);
        assert.match(refused.text, new RegExp(field), query);
      }
      const anonymous = await get(null, `${UPDATE_METADATA_PATH}?directorRoot=1&root=1`);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'device.certificate_required');

      // A device further behind than one answer carries: at most BUNDLED_ROOTS of each, the rest it fetches alone.
      await rotateRoots(BUNDLED_ROOTS + 1);
      const latest = 3 + BUNDLED_ROOTS + 1;
      const behind = (await check('directorRoot=1&root=1')).body as UpdateMetadata;
      assert.equal(behind.director.latestRoot, latest);
      assert.deepEqual(
        behind.director.roots.map((root) => (JSON.parse(root) as { signed: { version: number } }).signed.version),
        Array.from({ length: BUNDLED_ROOTS }, (_, i) => i + 2),
      );
      assert.equal(behind.repository.latestRoot, latest);
      assert.deepEqual(
        Object.keys(behind.repository.files)
          .filter((name) => name.endsWith('.root.json'))
          .sort((x, y) => parseInt(x) - parseInt(y)),
        Array.from({ length: BUNDLED_ROOTS }, (_, i) => `${i + 2}.root.json`),
      );
    });

    it("tells a device its update is available and follows its status over MQTT into the API's counts and the device's update view", async () => {
      const device = d[3]!;
      const { client, messages } = await online(device);
      const created = await create([device.id]);
      assert.equal(created.status, 201, created.text);
      const rolloutId = created.body.id as string;
      await t.platform.updates.rollouts.tick();
      await eventually(() => messages.some((m) => m.topic === `d/${device.id}/updates/available`), 3000, 'updates/available');
      assert.deepEqual(messages.find((m) => m.topic.endsWith('updates/available'))!.body, { rolloutId });

      const publish = (state: string) =>
        client.publishAsync(
          `d/${device.id}/updates/status`,
          JSON.stringify({ rolloutId, state, target: release.targetName, ts: Date.now() }),
          { qos: 1 },
        );
      await publish('downloading');
      await eventually(
        async () => (await api().get(`/api/v1/updates/rollouts/${rolloutId}`, { token })).body.counts.downloading === 1,
        3000,
        'downloading counted',
      );
      await publish('succeeded');
      await eventually(
        async () => (await api().get(`/api/v1/updates/rollouts/${rolloutId}`, { token })).body.counts.succeeded === 1,
        3000,
        'success counted',
      );
      const detail = await api().get(`/api/v1/updates/rollouts/${rolloutId}`, { token });
      assert.equal(detail.body.currentPhase, 0);
      assert.equal(detail.body.currentPhaseCounts.succeeded, 1);
      const view = await api().get(`/api/v1/devices/${device.id}/updates`, { token });
      assert.equal(view.status, 200, view.text);
      assert.equal(view.body.firmwareVersion, '3.1.0');
      assert.equal(view.body.rollout.id, rolloutId);
      assert.equal(view.body.rollout.state, 'succeeded');
      const succeeded = await api().get(`/api/v1/updates/rollouts/${rolloutId}/devices?state=succeeded`, { token });
      assert.deepEqual(
        succeeded.body.devices.map((x: { deviceId: string }) => x.deviceId),
        [device.id],
      );
      await t.platform.updates.rollouts.tick();
      assert.equal((await api().get(`/api/v1/updates/rollouts/${rolloutId}`, { token })).body.status, 'completed');
      assert.equal(messages.filter((m) => m.topic.endsWith('/errors')).length, 0);
    });

    it("accepts a signed version report and refuses a forged signature, another device's ID and a replayed counter on d/<id>/errors", async () => {
      const device = d[4]!;
      const other = d[5]!;
      const { client, messages } = await online(device);
      const report = (counter: number, deviceId = device.id): VersionReport => ({
        deviceId,
        counter,
        ts: Date.now(),
        running: { target: release.targetName, version: '3.1.0', sha256: release.sha256 },
        slot: 'b',
        securityVersion: 1,
        errors: [],
      });
      const publish = (payload: string, channel = 'report') =>
        client.publishAsync(`d/${device.id}/updates/${channel}`, payload, { qos: 1 });
      const errors = () => messages.filter((m) => m.topic === `d/${device.id}/errors`).map((m) => m.body.code as string);

      await publish(signedReport(report(5), device.key));
      await eventually(
        async () => (await api().get(`/api/v1/devices/${device.id}/updates`, { token })).body.report?.counter === 5,
        3000,
        'report stored',
      );
      const view = await api().get(`/api/v1/devices/${device.id}/updates`, { token });
      assert.equal(view.body.firmwareVersion, '3.1.0');
      assert.deepEqual(view.body.report.running, { target: release.targetName, version: '3.1.0', sha256: release.sha256 });

      await publish(signedReport(report(6), other.key));
      await eventually(() => errors().length === 1, 3000, 'forged signature refused');
      await publish(signedReport(report(7, other.id), device.key));
      await eventually(() => errors().length === 2, 3000, "another device's ID refused");
      await publish(signedReport(report(5), device.key));
      await eventually(() => errors().length === 3, 3000, 'replay refused');
      await publish(signedReport(report(4), device.key));
      await eventually(() => errors().length === 4, 3000, 'older counter refused');
      await publish('{"report": 1}');
      await eventually(() => errors().length === 5, 3000, 'malformed refused');
      await publish('{}', 'firmware');
      await eventually(() => errors().length === 6, 3000, 'unknown channel refused');
      assert.deepEqual(errors(), [
        'update.report_signature_invalid',
        'update.report_invalid',
        'update.report_replayed',
        'update.report_replayed',
        'update.report_invalid',
        'update.channel_unknown',
      ]);
      assert.equal(
        (await api().get(`/api/v1/devices/${device.id}/updates`, { token })).body.report.counter,
        5,
        'nothing refused was stored',
      );

      await publish(signedReport(report(6), device.key));
      await eventually(
        async () => (await api().get(`/api/v1/devices/${device.id}/updates`, { token })).body.report?.counter === 6,
        3000,
        'the next counter is accepted',
      );
    });

    it('another organization can neither see nor control a rollout, nor start one with a foreign release', async () => {
      const created = await create([d[6]!.id]);
      assert.equal(created.status, 201, created.text);
      const id = created.body.id as string;
      const unknown = '00000000-0000-0000-0000-000000000000';
      for (const [method, suffix] of [
        ['GET', ''],
        ['GET', '/devices'],
        ['POST', '/pause'],
        ['POST', '/resume'],
        ['POST', '/abort'],
      ] as const) {
        const foreign = await api().request(method, `/api/v1/updates/rollouts/${id}${suffix}`, { token: tokenB });
        const missing = await api().request(method, `/api/v1/updates/rollouts/${unknown}${suffix}`, { token: tokenB });
        assert.equal(foreign.status, 404, `${method} ${suffix}`);
        assert.equal(foreign.body.error.code, 'update.rollout_not_found');
        assert.equal(foreign.body.error.message.replace(id, unknown), missing.body.error.message);
      }
      assert.deepEqual((await api().get('/api/v1/updates/rollouts', { token: tokenB })).body.rollouts, []);
      assert.equal((await api().get(`/api/v1/devices/${d[6]!.id}/updates`, { token: tokenB })).status, 404);
      const stolen = await api().post(
        '/api/v1/updates/rollouts',
        { releaseId: release.id, selector: { deviceIds: [d[6]!.id] } },
        { token: tokenB },
      );
      assert.equal(stolen.status, 404);
      assert.equal(stolen.body.error.code, 'update.release_not_found');
      assert.equal((await api().get(`/api/v1/updates/rollouts/${id}`, { token })).body.status, 'running', 'untouched');
      assert.equal((await api().post(`/api/v1/updates/rollouts/${id}/abort`, undefined, { token })).status, 200);
    });

    it('lists rollouts newest first and pages their devices by cursor; refuses a malformed rollout at the edge', async () => {
      t.clock.advance(1000);
      const created = await create([d[7]!.id, d[0]!.id, d[1]!.id], {
        name: 'paged',
        phases: [
          { percent: 50, soakSeconds: 60 },
          { percent: 100, soakSeconds: 0 },
        ],
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.enrolled, 3);
      const first = await api().get(`/api/v1/updates/rollouts/${created.body.id}/devices?limit=2`, { token });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.devices.length, 2);
      const second = await api().get(`/api/v1/updates/rollouts/${created.body.id}/devices?limit=2&cursor=${first.body.nextCursor}`, {
        token,
      });
      assert.equal(second.body.devices.length, 1);
      assert.equal(second.body.nextCursor, null);
      const all = [...first.body.devices, ...second.body.devices].map((x: { deviceId: string }) => x.deviceId);
      assert.deepEqual([...all].sort(), [d[7]!.id, d[0]!.id, d[1]!.id].sort());
      assert.deepEqual(
        [...first.body.devices, ...second.body.devices].map((x: { phase: number }) => x.phase).sort(),
        [0, 0, 1],
        'ceil(50 % of 3) = 2 devices in phase 0',
      );

      const list = await api().get('/api/v1/updates/rollouts', { token });
      assert.equal(list.body.rollouts[0].id, created.body.id);
      assert.equal((await api().get('/api/v1/updates/rollouts?cursor=garbage', { token })).status, 400);
      const bad = await api().post(
        '/api/v1/updates/rollouts',
        {
          releaseId: release.id,
          selector: { deviceIds: [d[7]!.id] },
          phases: [
            { percent: 60, soakSeconds: 0 },
            { percent: 30, soakSeconds: 0 },
          ],
        },
        { token },
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'update.rollout_invalid');
      const extra = await api().post(
        '/api/v1/updates/rollouts',
        { releaseId: release.id, selector: { deviceIds: [d[7]!.id] }, everyone: true },
        { token },
      );
      assert.equal(extra.status, 400);
    });

    it("changes a rollout's thresholds, retry policy and window, and retries its failed devices, over HTTPS; refuses malformed settings at the edge", async () => {
      const created = await create([d[6]!.id], { retry: { maxAttempts: 3, backoffSeconds: 120 }, pauseThreshold: 0.05 });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(created.body.retry, { maxAttempts: 3, backoffSeconds: 120 });
      assert.equal(created.body.pauseThreshold, 0.05);
      assert.equal(created.body.window, null);
      const id = created.body.id as string;
      const window = { start: '01:00', end: '05:00', timeZone: 'Europe/Paris' };
      const changed = await api().patch(`/api/v1/updates/rollouts/${id}`, { failureThreshold: 0.5, window }, { token });
      assert.equal(changed.status, 200, changed.text);
      assert.deepEqual([changed.body.failureThreshold, changed.body.window], [0.5, window]);
      const detail = await api().get(`/api/v1/updates/rollouts/${id}`, { token });
      assert.equal(detail.body.retrying, 0);
      assert.equal((await api().get(`/api/v1/updates/rollouts/${id}/devices`, { token })).body.devices[0].attempts, 0);

      for (const [body, code] of [
        [{}, 'update.rollout_invalid'],
        [{ pauseThreshold: 0.9 }, 'update.rollout_invalid'],
        [{ window: { start: '25:00', end: '05:00', timeZone: 'UTC' } }, 'request.invalid'],
        [{ window: { start: '01:00', end: '05:00', timeZone: 'Nowhere/Land' } }, 'update.rollout_invalid'],
        [{ retry: { maxAttempts: 0 } }, 'request.invalid'],
        [{ retry: { maxAttempts: '3' } }, 'request.invalid'],
        [{ everyone: true }, 'request.invalid'],
      ] as const) {
        const refused = await api().patch(`/api/v1/updates/rollouts/${id}`, body, { token });
        assert.equal(refused.status, 400, JSON.stringify(body));
        assert.equal(refused.body.error.code, code, JSON.stringify(body));
      }
      const retried = await api().post(`/api/v1/updates/rollouts/${id}/retry`, {}, { token });
      assert.equal(retried.status, 200, retried.text);
      assert.deepEqual(retried.body.retried, [], 'no device has failed');
      assert.equal((await api().post(`/api/v1/updates/rollouts/${id}/retry`, { deviceIds: [] }, { token })).status, 400);
      for (const [method, suffix, body] of [
        ['PATCH', '', { failureThreshold: 0.9 }],
        ['POST', '/retry', {}],
      ] as const) {
        const foreign = await api().request(method, `/api/v1/updates/rollouts/${id}${suffix}`, { token: tokenB, body });
        assert.equal(foreign.status, 404, `${method} ${suffix} from another organization`);
      }
      assert.equal((await api().post(`/api/v1/updates/rollouts/${id}/abort`, undefined, { token })).status, 200);
      const late = await api().patch(`/api/v1/updates/rollouts/${id}`, { failureThreshold: 0.9 }, { token });
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'update.rollout_status');
    });
  });
}
