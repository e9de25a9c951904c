/**
 * Attacks by whoever owns the server: its database, master key, TLS key and every online key
 * (snapshot, timestamp, director), serving forged metadata to a real agent. They may withhold
 * updates (and the device must notice and say so) but never freeze a device for good, nor make it
 * install what its offline keys did not sign for it; recovery needs the offline root alone.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BUNDLED_ROOTS, directorRootPath, UPDATE_METADATA_PATH } from '@bulwark/protocol';
import { assertRefused, METADATA_TRANSPORTS, release, useAttackWorld } from '../testing/update-attack.js';
import { HARDWARE } from '../testing/update-device.js';
import { main } from './agent-cli.js';
import { Slots } from './slots.js';

for (const transport of METADATA_TRANSPORTS) {
  describe(`update agent: a server owner with every online key cannot freeze the device through the director [${transport.name}]`, () => {
    const { setup } = useAttackWorld('compromised', transport);
    const directorRootVersion = (stateDir: string): number =>
      JSON.parse(readFileSync(join(stateDir, 'director', 'root.json'), 'utf8')).signed.version;

    it('refuses a director version more than 2^20 above the last seen, so one forged message does not freeze the device', async () => {
      const { fixture, device } = await setup();
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE, version: Number.MAX_SAFE_INTEGER });
      const forged = await device.cycle();
      assert.equal(forged.agent.lastError?.code, 'update.metadata_invalid', forged.agent.lastError?.message);
      assert.match(forged.agent.lastError?.message ?? '', /2\^20/);
      assert.equal(forged.check, 'refused');

      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, version: 2 });
      const legitimate = await device.cycle();
      assert.equal(legitimate.check, 'reboot', legitimate.agent.lastError?.message);
      assert.deepEqual(new Slots(device.stateDir).readBoot(), { active: 'b', trial: null });
    });

    it('recovers from a director fast-forward by an offline director root rotation to a new targets key', async () => {
      const { fixture, device } = await setup();
      const compromisedKey = fixture.keys.director;
      // The largest jump the rule lets through (none seen yet): the device now refuses the server's real versions as replays.
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE, version: 2 ** 20 });
      assert.equal((await device.cycle()).check, 'up_to_date');
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, version: 2 });
      const frozen = await device.cycle();
      assert.equal(frozen.agent.lastError?.code, 'update.metadata_invalid');
      assert.match(frozen.agent.lastError?.message ?? '', /replay/);

      // Recovery: the root key holders sign director root 2 naming a new director key, offline.
      fixture.rotateDirectorKey();
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, version: 3 });
      const recovered = await device.cycle();
      assert.equal(recovered.check, 'reboot', recovered.agent.lastError?.message);
      assert.equal(directorRootVersion(device.stateDir), 2);
      assert.deepEqual(new Slots(device.stateDir).readBoot(), { active: 'b', trial: null });

      // The compromised key signs nothing the device takes any more, whatever its version.
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE, version: 10, signer: compromisedKey });
      const stale = await device.cycle();
      assert.equal(stale.agent.lastError?.code, 'update.metadata_invalid');
      assert.equal(stale.check, 'refused');
    });

    it('walks every director root version it missed, each verified under the one before', async () => {
      const { fixture, device } = await setup();
      fixture.rotateDirectorKey();
      fixture.rotateDirectorKey();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      const { check, agent } = await device.cycle();
      assert.equal(check, 'reboot', agent.lastError?.message);
      assert.equal(directorRootVersion(device.stateDir), 3);
    });

    it('walks director and image root chains longer than one answer carries, fetching the versions past it alone', async () => {
      const { fixture, device } = await setup();
      const rotations = BUNDLED_ROOTS + 2;
      for (let i = 0; i < rotations; i++) fixture.rotateDirectorKey();
      for (let i = 0; i < rotations; i++) fixture.rotateTargetsKey();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
      const before = fixture.requests.length;
      const { check, agent } = await device.cycle();
      assert.equal(check, 'reboot', agent.lastError?.message);
      assert.equal(directorRootVersion(device.stateDir), rotations + 1);
      assert.equal(JSON.parse(readFileSync(join(device.stateDir, 'tuf', 'root.json'), 'utf8')).signed.version, rotations + 1);
      const rootsAlone = fixture.requests
        .slice(before)
        .filter((q) => q.status === 200 && q.path.endsWith('.root.json'))
        .map((q) => q.path);
      // Version 1 is pinned; the answer carries the next BUNDLED_ROOTS of each chain.
      const first = transport.bundles ? BUNDLED_ROOTS + 2 : 2;
      const alone = Array.from({ length: rotations + 2 - first }, (_, i) => first + i);
      assert.deepEqual(rootsAlone, [...alone.map((v) => directorRootPath(v)), ...alone.map((v) => fixture.metadataPath(`${v}.root.json`))]);
    });
  });

  describe(`update agent: a silent director cannot hide a frozen image repository [${transport.name}]`, () => {
    const { setup } = useAttackWorld('silent', transport);
    const expired = { timestampExpires: new Date(Date.now() - 60_000) };

    it('refreshes the image repository when the director names nothing new, and reports an expired timestamp as update.metadata_expired', async () => {
      const { fixture, device } = await setup();
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE });
      assert.equal((await device.cycle()).check, 'up_to_date');
      assert.deepEqual(device.reports.at(-1)?.report.errors, []);

      fixture.publish(expired);
      fixture.direct(device.deviceId, null, { hardwareId: HARDWARE });
      await assertRefused(device, 'update.metadata_expired');
      // Alone, or in the check's one answer, which carries it.
      const timestamps = fixture.requests.filter(
        (r) =>
          r.deviceId === device.deviceId &&
          (r.path === fixture.metadataPath('timestamp.json') || (r.path === UPDATE_METADATA_PATH && r.status === 200)),
      );
      assert.equal(timestamps.length, 2, 'the timestamp is read at every check');
    });

    it('reports a frozen repository while the device already runs what the director names', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'));
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, rolloutId: 'r-done' });
      assert.equal((await device.cycle()).check, 'reboot');
      fixture.publish(expired);
      const { check, agent } = await device.cycle();
      assert.equal(check, 'refused');
      assert.equal(agent.lastError?.code, 'update.metadata_expired');
      assert.equal(device.reports.at(-1)?.report.errors.at(-1)?.code, 'update.metadata_expired');
    });

    it('sends a failed status with update.metadata_expired for the rollout whose image a frozen repository keeps from the device', async () => {
      const { fixture, device } = await setup();
      const r = fixture.addRelease(release('1.1.0'), expired);
      fixture.direct(device.deviceId, r, { hardwareId: HARDWARE, rolloutId: 'r-frozen' });
      await assertRefused(device, 'update.metadata_expired');
      const status = device.statuses.at(-1);
      assert.equal(status?.state, 'failed');
      assert.equal(status?.rolloutId, 'r-frozen');
      assert.equal(status?.target, fixture.targetName('1.1.0'));
      assert.equal(status?.error?.code, 'update.metadata_expired');
    });
  });
}

describe('update agent: only images of its own product line, pinned at setup', () => {
  const { setup } = useAttackWorld('product');
  const OTHER = 'prod-other';

  it("refuses an image another product line's release key signed for the same hardware ID, keeping its anti-rollback counter", async () => {
    const { fixture, device } = await setup();
    fixture.addProductLine(OTHER);
    const r = fixture.addRelease(release('9.0.0', { product: OTHER, securityVersion: 50 }));
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    await assertRefused(device, 'update.product_mismatch');
    assert.equal(device.statuses.at(-1)?.error?.code, 'update.product_mismatch');
  });

  it("refuses an image another product line's release key signed claiming this product in its custom", async () => {
    const { fixture, device } = await setup();
    fixture.addProductLine(OTHER);
    const r = fixture.addRelease(release('9.0.0', { product: OTHER, customProduct: fixture.productId }));
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    await assertRefused(device, 'update.product_mismatch');
  });

  it('refuses an image its own product line signed for another product (custom.product)', async () => {
    const { fixture, device } = await setup();
    const r = fixture.addRelease(release('1.1.0', { customProduct: OTHER }));
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    await assertRefused(device, 'update.product_mismatch');
  });

  it('keeps a state directory set up without a product running but installs nothing until `bulwark-agent pin` names its product', async () => {
    const { fixture, device } = await setup();
    rmSync(join(device.stateDir, 'product.json'), { force: true });
    fixture.direct(device.deviceId, null, { hardwareId: HARDWARE });
    assert.equal((await device.cycle()).check, 'up_to_date');
    const r = fixture.addRelease(release('1.1.0'));
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    await assertRefused(device, 'update.product_unpinned');

    const out: string[] = [];
    const sink = { write: (chunk: string) => out.push(chunk) } as unknown as NodeJS.WritableStream;
    assert.equal(
      await main(['pin', '--state', device.stateDir, '--product', OTHER.replace('other', '/x')], sink, sink),
      2,
      'a product ID must be a role name',
    );
    assert.equal(await main(['pin', '--state', device.stateDir, '--product', fixture.productId], sink, sink), 0, out.join(''));
    assert.equal(await main(['pin', '--state', device.stateDir, '--product', OTHER], sink, sink), 1, 'a pinned product is never changed');
    const { check, agent } = await device.cycle();
    assert.equal(check, 'reboot', agent.lastError?.message);
  });
});
