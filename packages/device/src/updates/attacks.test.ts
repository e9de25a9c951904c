import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertRefused, METADATA_TRANSPORTS, release, useAttackWorld } from '../testing/update-attack.js';
import { HARDWARE, provisionTestDevice } from '../testing/update-device.js';
import { sha256, testImage, TufKey } from '../testing/update-fixture.js';
import { makeTestPki } from '../testing/update-pki.js';
import { useUpdateFixture } from '../testing/update-suite.js';
import { Slots } from './slots.js';

for (const transport of METADATA_TRANSPORTS) {
  describe(`update agent: TUF and Uptane attacks are refused and the running slot stays [${transport.name}]`, () => {
    const { setup, fixture: startFixture } = useAttackWorld('attacks', transport);

    it('refuses a tampered image (hash mismatch) and deletes the partial download', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      const tampered = Buffer.from(r.image);
      tampered.writeUInt8(tampered.readUInt8(500) ^ 0xff, 500);
      fixture.imageBehaviour.set(fixture.imagePath(r), { body: tampered });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.hash_mismatch');
      assert.equal(existsSync(new Slots(device.stateDir).partialPath('b')), false);
      assert.equal(device.statuses.at(-1)?.state, 'failed');
    });

    it("keeps the inactive slot's previous image bootable (the fallback) when the next download is refused", async () => {
      const { fixture, device } = await setup();
      fixture.direct(device.deviceId, fixture.addRelease(release('1.1.0')), { hardwareId: HARDWARE });
      assert.equal((await device.cycle()).check, 'reboot');
      const slots = new Slots(device.stateDir);
      const fallback = slots.manifest('a');
      assert.equal(fallback?.version, '1.0.0');
      const r = fixture.addRelease(release('1.2.0'));
      fixture.imageBehaviour.set(fixture.imagePath(r), { body: testImage('not 1.2.0', 100_000) });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      const { check, agent } = await device.cycle();
      assert.equal(agent.lastError?.code, 'update.hash_mismatch');
      assert.equal(check, 'refused');
      assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
      assert.deepEqual(slots.manifest('a'), fallback);
      assert.ok(await slots.verify('a'));
    });

    it('refuses an image longer than its signed length, cutting an endless transfer', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.imageBehaviour.set(fixture.imagePath(r), { endless: true });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.length_exceeded');
    });

    it('times out a stalled download, resumes it with a range request and completes', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.imageBehaviour.set(fixture.imagePath(r), { stallAfter: 40_000, stalls: 1 });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      const { check, boots } = await device.cycle();
      assert.equal(check, 'reboot');
      assert.deepEqual(boots, ['normal', 'committed']);
      const gets = fixture.served(fixture.imagePath(r));
      assert.deepEqual(
        gets.map((g) => [g.range, g.status]),
        [
          [undefined, 200],
          ['bytes=40000-', 206],
        ],
      );
      assert.equal(new Slots(device.stateDir).manifest('b')?.sha256, sha256(r.image));
    });

    it('gives up with download_stalled when every attempt stalls, and resumes from the partial file on the next check', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.imageBehaviour.set(fixture.imagePath(r), { stallAfter: 30_000, stalls: 3 });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.download_stalled');
      fixture.imageBehaviour.delete(fixture.imagePath(r));
      const { check } = await device.cycle();
      assert.equal(check, 'reboot');
      assert.equal(fixture.served(fixture.imagePath(r)).at(-1)?.range, 'bytes=30000-');
    });

    it('refuses a rollback to a lower version', async () => {
      const { fixture, device } = await setup({ version: '1.0.0', securityVersion: 0 });
      const r = fixture.addRelease(release('0.9.0', { securityVersion: 0 }));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.rollback_refused');
    });

    it('refuses an image whose securityVersion is below the anti-rollback counter', async () => {
      const { fixture, device } = await setup({ version: '1.0.0', securityVersion: 3 });
      const r = fixture.addRelease(release('1.1.0', { securityVersion: 2 }));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.rollback_refused');
    });

    it('refuses an expired timestamp (a freeze attack)', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'), { timestampExpires: new Date(Date.now() - 60_000) });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.metadata_expired');
    });

    it('refuses mix-and-match: targets metadata other than the version the snapshot names', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      const { targets } = fixture.versions;
      fixture.files.set(
        fixture.metadataPath(`${targets}.targets.json`),
        fixture.files.get(fixture.metadataPath(`${targets - 1}.targets.json`))!,
      );
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.metadata_invalid');
    });

    it('refuses replayed old metadata (a timestamp older than one already trusted)', async () => {
      const { fixture, device } = await setup();
      const old = fixture.files.get(fixture.metadataPath('timestamp.json'))!;
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      assert.equal((await device.cycle()).check, 'reboot');
      const next = fixture.addRelease(release('1.2.0'));
      fixture.files.set(fixture.metadataPath('timestamp.json'), old);
      fixture.direct(device.deviceId, next, { hardwareId: HARDWARE });
      const slots = new Slots(device.stateDir);
      const { check, agent } = await device.cycle();
      assert.equal(agent.lastError?.code, 'update.metadata_invalid', agent.lastError?.message);
      assert.equal(check, 'refused');
      assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    });

    it('refuses an image not signed for the device hardware', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0', { hardwareIds: ['hw-rev-a'] }));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.hardware_mismatch');
    });

    it('refuses a director target the image repository does not sign', async () => {
      const { fixture, device } = await setup();
      fixture.addRelease(release('1.1.0'));
      const rogue = testImage('rogue', 1000);
      fixture.direct(
        device.deviceId,
        { name: fixture.targetName('6.6.6'), length: rogue.length, sha256: sha256(rogue) },
        { hardwareId: HARDWARE },
      );
      await assertRefused(device, 'update.target_unknown');
    });

    it('refuses a director target whose hash differs from the signed image of that name', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(
        device.deviceId,
        { name: fixture.targetName('1.1.0'), length: r.image.length, sha256: sha256(testImage('other', 100_000)) },
        { hardwareId: HARDWARE },
      );
      await assertRefused(device, 'update.director_mismatch');
    });

    it('refuses director metadata made for another device', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, customDeviceId: 'dev-someone-else' });
      await assertRefused(device, 'update.director_mismatch');
    });

    it('refuses director metadata signed by a key the director root does not list', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, signer: new TufKey() });
      await assertRefused(device, 'update.metadata_invalid');
    });

    it('refuses expired director metadata and a replay of an older director version', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, expires: new Date(Date.now() - 60_000) });
      await assertRefused(device, 'update.metadata_expired');
      const older = fixture.direct(device.deviceId, null, { hardwareId: HARDWARE });
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE });
      assert.equal((await device.cycle()).check, 'up_to_date');
      fixture.serveDirector(device.deviceId, older);
      await assertRefused(device, 'update.metadata_invalid');
    });

    it('refuses to talk to a server whose certificate does not chain to the pinned deployment root', async () => {
      const { fixture, device } = await setup();
      const impostor = await startFixture(await makeTestPki());
      impostor.direct(device.deviceId, impostor.addRelease(release('1.1.0')), { hardwareId: HARDWARE });
      const { check, agent } = await device.cycle({ baseUrl: impostor.baseUrl });
      assert.equal(check, 'failed');
      assert.match(agent.lastError?.message ?? '', /certificate/i);
      assert.equal(impostor.requests.length, 0);
      assert.deepEqual(new Slots(device.stateDir).readBoot(), { active: 'a', trial: null });
      assert.ok(fixture.requests.length === 0);
    });

    it('refuses top-level targets signed only by an online (snapshot) key', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'), { targetsSigner: fixture.keys.snapshot });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.metadata_invalid');
    });

    it('follows a root rotation and refuses targets signed by the revoked targets key', async () => {
      const { fixture, device } = await setup();
      const revoked = fixture.keys.targets;
      fixture.rotateTargetsKey();
      const r = fixture.addRelease(release('1.1.0'), { targetsSigner: revoked });
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.metadata_invalid');
      assert.equal(JSON.parse(readFileSync(join(device.stateDir, 'tuf', 'root.json'), 'utf8')).signed.version, 2);
      fixture.publish();
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      const { check, agent } = await device.cycle();
      assert.equal(check, 'reboot', agent.lastError?.message);
    });
  });
}

describe('update agent: health check', () => {
  const u = useUpdateFixture('health');
  const { temp } = u;

  it('rolls back by itself to the old slot when the new image fails its health check, reports rolled_back and does not reinstall it', async () => {
    const device = await provisionTestDevice(u.fixture, u.pki, temp.dir);
    const r = u.fixture.addRelease({
      version: '1.1.0',
      securityVersion: 5,
      hardwareIds: [HARDWARE],
      image: testImage('1.1.0-bad', 50_000),
    });
    u.fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, rolloutId: 'r-bad' });
    const failing = async () => {
      throw new Error('the application did not come up');
    };
    const { boots } = await device.cycle({ healthCheck: failing });
    assert.deepEqual(boots, ['normal', 'reboot', 'rolled_back']);
    const slots = new Slots(device.stateDir);
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
    assert.equal(slots.counter(), 0);
    const last = device.statuses.at(-1)!;
    assert.equal(last.state, 'rolled_back');
    assert.equal(last.rolloutId, 'r-bad');
    assert.equal(last.error?.code, 'update.health_check_failed');
    assert.match(last.error?.message ?? '', /did not come up/);
    assert.equal(device.reports.at(-1)?.report.running.version, '1.0.0');

    const again = await device.cycle();
    assert.equal(again.check, 'up_to_date');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
  });

  it('fails a health check that does not finish within its time limit', async () => {
    const device = await provisionTestDevice(u.fixture, u.pki, temp.dir);
    const r = u.fixture.addRelease({
      version: '1.2.0',
      securityVersion: 1,
      hardwareIds: [HARDWARE],
      image: testImage('1.2.0-slow', 50_000),
    });
    u.fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    const { boots } = await device.cycle({ healthCheck: () => new Promise(() => undefined), healthTimeoutMs: 200 });
    assert.deepEqual(boots, ['normal', 'reboot', 'rolled_back']);
    assert.match(device.statuses.at(-1)?.error?.message ?? '', /within 200 ms/);
  });
});
