import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import { cliActor, type Actor } from '../accounts/roles.js';
import { HOUR } from '../clock.js';
import { DeviceMessageRefusal } from '../errors.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf } from '../testing/devices.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import type { RolloutService } from './rollouts.js';
import {
  hardwareProduct,
  identityOf,
  insertRelease,
  ROLLOUTS_TICKED_BY_TEST,
  registerDevices,
  statusPayload,
  type TestRelease,
} from '../testing/rollout-fixtures.js';
import { tufKeyOf } from './tuf/keys.js';

/** Director targets metadata as a TUF client parses it. */
/** What a device message was refused with, or null once it was taken. */
const refusalOf = (handled: Promise<void>): Promise<DeviceMessageRefusal | null> =>
  handled.then(
    () => null,
    (error: unknown) => {
      if (error instanceof DeviceMessageRefusal) return error;
      throw error;
    },
  );

function targetsMetadata(json: unknown): Metadata<Targets> {
  return Metadata.fromJSON(MetadataKind.Targets, json as Record<string, never>);
}

for (const engine of ENGINES) {
  describe(`director and rollouts [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let product: string;
    let actor: Actor;
    let rollouts: RolloutService;
    let release: TestRelease;
    let serial = 0;

    before(async () => {
      t = await startTestPlatform(engine, ROLLOUTS_TICKED_BY_TEST);
      org = await organizationIdOf(t.platform, t.org);
      actor = cliActor(org, 'test');
      product = await hardwareProduct(t.platform, org, 'Rollout sensor');
      release = await insertRelease(t.platform, org, product, '2.0.0');
      rollouts = t.platform.updates.rollouts;
    });
    after(() => t?.close());

    const devices = (count: number, extra: Parameters<typeof registerDevices>[5] = {}) =>
      registerDevices(t.platform, org, product, `R${++serial}`, count, extra);
    const targets = async (deviceId: string) => (await rollouts.directorTargets(identityOf(org, deviceId, product))).metadata;
    const named = async (deviceId: string) =>
      Object.keys(((await targets(deviceId)).signed as { targets: Record<string, unknown> }).targets);
    const status = async (
      rolloutId: string,
      deviceId: string,
      state: Parameters<typeof statusPayload>[1],
      error?: { code: string; message: string },
    ) =>
      assert.equal(
        await refusalOf(
          rollouts.deviceMessage(identityOf(org, deviceId, product), 'status', statusPayload(rolloutId, state, release.targetName, error)),
        ),
        null,
      );
    const offered = async (rolloutId: string) =>
      (await rollouts.devicesOf(actor, rolloutId, { limit: 500 })).devices.filter((d) => d.offeredAt !== null).map((d) => d.deviceId);

    it('signs per-device metadata that verifies with the director key, names only that device, and only ever increases its version', async () => {
      const [d1, d2] = await devices(2);
      const [odd] = await devices(1, { attributes: { hardwareId: 'hw-z' } });
      const key = tufKeyOf((await t.platform.updates.director.key(org)).publicKey);

      const empty = targetsMetadata(await targets(d1!));
      key.verifySignature(empty);
      assert.equal(empty.signed.version, 1);
      assert.deepEqual(Object.keys(empty.signed.targets), [], 'a device in no rollout gets signed metadata naming nothing');
      assert.equal(targetsMetadata(await targets(d1!)).signed.version, 1, 'unchanged content is not re-signed');

      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: [d1!, d2!, odd!] } });
      await rollouts.tick();
      const assigned = targetsMetadata(await targets(d1!));
      key.verifySignature(assigned);
      assert.equal(assigned.signed.version, 2);
      const target = assigned.signed.targets[release.targetName]!;
      assert.ok(target, 'the target is named as the image repository names it');
      assert.equal(target.length, release.length);
      assert.deepEqual(target.hashes, { sha256: release.sha256 });
      assert.deepEqual(target.custom, { deviceId: d1, hardwareId: 'hw-a', rolloutId: rollout.id });
      assert.ok(Date.parse(assigned.signed.expires) > t.clock.now());

      // A relay swapping the device ID breaks the signature.
      const forged = await targets(d1!);
      ((forged.signed as any).targets[release.targetName].custom as { deviceId: string }).deviceId = d2!;
      assert.throws(() => key.verifySignature(targetsMetadata(forged)));

      // attributes.hardwareId wins over the product's revision; an image not signed for it is never named.
      assert.deepEqual(await named(odd!), []);

      t.clock.advance(13 * HOUR);
      const refreshed = targetsMetadata(await targets(d1!));
      assert.equal(refreshed.signed.version, 3, 're-signed once past half its lifetime');
      assert.deepEqual(Object.keys(refreshed.signed.targets), [release.targetName]);
      await rollouts.abort(actor, rollout.id);
    });

    it('advances a phase only after its soak and once successes reach the threshold, then completes', async () => {
      const ids = await devices(10);
      const rollout = await rollouts.create(actor, {
        releaseId: release.id,
        selector: { deviceIds: ids },
        phases: [
          { percent: 10, soakSeconds: 3600 },
          { percent: 50, soakSeconds: 3600 },
          { percent: 100, soakSeconds: 0 },
        ],
        successThreshold: 1,
      });
      assert.equal(rollout.enrolled, 10);
      await rollouts.tick();
      const first = await offered(rollout.id);
      assert.equal(first.length, 1, '10 % of 10 devices');

      await status(rollout.id, first[0]!, 'downloading');
      t.clock.advance(3600 * 1000);
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).currentPhase, 0, 'soak passed but no success yet');

      await status(rollout.id, first[0]!, 'succeeded');
      await rollouts.tick();
      let view = await rollouts.get(actor, rollout.id);
      assert.equal(view.currentPhase, 1);
      const second = await offered(rollout.id);
      assert.equal(second.length, 5, 'phase 1 reaches 50 %');

      for (const id of second.filter((d) => d !== first[0])) await status(rollout.id, id, 'succeeded');
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).currentPhase, 1, 'the new phase soaks from when it started');
      t.clock.advance(3600 * 1000);
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).currentPhase, 2);
      for (const id of ids) await status(rollout.id, id, 'succeeded');
      await rollouts.tick();
      view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'completed');
      assert.equal(view.counts.succeeded, 10);
      const audit = await t.platform.audit.query({ organizationId: org });
      const actions = audit.entries.filter((e) => e.target.id === rollout.id).map((e) => e.action);
      assert.deepEqual(actions.sort(), [
        'update.rollout_completed',
        'update.rollout_created',
        'update.rollout_phase_advanced',
        'update.rollout_phase_advanced',
      ]);
      const device = await t.platform.devices.service.get(actor, ids[0]!);
      assert.equal(device.firmwareVersion, '2.0.0', 'a success records the release version on the device');
    });

    it('halts by itself when failures reach the threshold, and stops naming the image for devices that have not started', async () => {
      const ids = await devices(10);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids }, failureThreshold: 0.2 });
      await rollouts.tick();
      const all = await offered(rollout.id);
      assert.equal(all.length, 10);
      await status(rollout.id, all[0]!, 'failed', { code: 'update.hash_mismatch', message: 'sha256 differs' });
      await status(rollout.id, all[1]!, 'downloading');
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).status, 'running', 'one failure in ten is under 20 %');
      await status(rollout.id, all[2]!, 'rolled_back', { code: 'update.health_check_failed', message: 'no network after boot' });
      await rollouts.tick();
      const view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'halted');
      assert.equal(view.counts.failed, 1);
      assert.equal(view.counts.rolled_back, 1);
      assert.equal(view.counts.downloading, 1);
      assert.equal(view.counts.pending, 7);
      const halted = (await t.platform.audit.query({ organizationId: org, action: 'update.rollout_halted' })).entries.find(
        (e) => e.target.id === rollout.id,
      );
      assert.ok(halted);
      assert.equal(halted.actor.type, 'system');
      assert.deepEqual([halted.details.failed, halted.details.rolledBack, halted.details.devices], [1, 1, 10]);

      assert.deepEqual(await named(all[5]!), [], 'a device that had not started is no longer named the image');
      assert.deepEqual(await named(all[1]!), [release.targetName], 'a device mid-download keeps its target');
      const failedDevices = await rollouts.devicesOf(actor, rollout.id, { state: 'failed' });
      assert.deepEqual(
        failedDevices.devices.map((d) => [d.deviceId, d.error]),
        [[all[0], { code: 'update.hash_mismatch', message: 'sha256 differs' }]],
      );
      await assert.rejects(rollouts.resume(actor, rollout.id), { code: 'update.rollout_still_failing' }, 'still at its failure threshold');
      await rollouts.abort(actor, rollout.id);
    });

    it('pause stops new offers, resume continues them, abort withdraws the target from devices that have not succeeded', async () => {
      const ids = await devices(3);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids }, maxConcurrentDownloads: 1 });
      await rollouts.tick();
      const [first] = await offered(rollout.id);
      assert.equal((await rollouts.pause(actor, rollout.id)).status, 'paused');
      await status(rollout.id, first!, 'succeeded');
      await rollouts.tick();
      assert.equal((await offered(rollout.id)).length, 1, 'no offers while paused');
      const waiting = ids.find((id) => id !== first)!;
      assert.deepEqual(await named(waiting), [], 'a device fetching while paused is not offered either');

      assert.equal((await rollouts.resume(actor, rollout.id)).status, 'running');
      await rollouts.tick();
      const now = await offered(rollout.id);
      assert.equal(now.length, 2);
      const second = now.find((id) => id !== first)!;
      assert.deepEqual(await named(second), [release.targetName]);

      const aborted = await rollouts.abort(actor, rollout.id);
      assert.equal(aborted.status, 'aborted');
      assert.ok(aborted.finishedAt);
      assert.deepEqual(await named(second), [], 'withdrawn from a device that had not succeeded');
      assert.deepEqual(await named(first!), [release.targetName], 'a device that succeeded keeps the image it runs');
      await assert.rejects(rollouts.pause(actor, rollout.id), { code: 'update.rollout_status' });
      const audit = (await t.platform.audit.query({ organizationId: org })).entries
        .filter((e) => e.target.id === rollout.id)
        .map((e) => e.action);
      assert.deepEqual(audit.sort(), [
        'update.rollout_aborted',
        'update.rollout_created',
        'update.rollout_paused',
        'update.rollout_resumed',
      ]);
    });

    it('never has more devices offered and unfinished than maxConcurrentDownloads', async () => {
      const ids = await devices(5);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids }, maxConcurrentDownloads: 2 });
      const first = rollouts.tick();
      assert.equal(rollouts.tick(), first, 'a tick during a tick shares it instead of overlapping');
      await first;
      await rollouts.tick();
      const two = await offered(rollout.id);
      assert.equal(two.length, 2);
      const outside = ids.filter((id) => !two.includes(id));
      assert.deepEqual(await named(outside[0]!), [], 'a device coming online while the cap is full waits');
      await status(rollout.id, two[0]!, 'succeeded');
      await Promise.all([rollouts.tick(), rollouts.tick(), rollouts.directorTargets(identityOf(org, outside[1]!, product))]);
      assert.equal((await offered(rollout.id)).length, 3, 'one finished device frees exactly one slot');
      await rollouts.abort(actor, rollout.id);
    });

    it("enrols only active or quarantined devices of the release's product, skips devices in another unfinished rollout, and selects by version for remediation", async () => {
      const tagged = await devices(3, { tags: ['field-trial'] });
      const otherProduct = await hardwareProduct(t.platform, org, 'Other gateway');
      const [foreign] = await registerDevices(t.platform, org, otherProduct, 'OTHER', 1, { tags: ['field-trial'] });
      await t.platform.devices.service.transition(actor, tagged[1]!, 'quarantine', 'suspicious traffic');
      await t.platform.devices.service.transition(actor, tagged[2]!, 'disable', 'returned');
      const busy = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: [tagged[0]!] } });

      const [fresh] = await devices(1, { tags: ['field-trial'] });
      await devices(1, { tags: ['field-trial'], pending: true });
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { tags: ['field-trial'] } });
      const members = (await rollouts.devicesOf(actor, rollout.id, {})).devices.map((d) => d.deviceId).sort();
      assert.deepEqual(
        members,
        [tagged[1]!, fresh!].sort(),
        'quarantined and active devices of the product only (not pending, disabled, busy or of another product)',
      );
      assert.equal(rollout.skipped, 1);
      assert.ok(!members.includes(foreign!));
      await rollouts.abort(actor, rollout.id);
      await rollouts.abort(actor, busy.id);

      const old = await devices(2);
      await t.platform.db.updateTable('devices').set({ firmware_version: '1.0.3' }).where('id', 'in', old).execute();
      const remediation = await rollouts.create(actor, { releaseId: release.id, selector: { firmwareVersions: ['1.0.3'] } });
      assert.deepEqual((await rollouts.devicesOf(actor, remediation.id, {})).devices.map((d) => d.deviceId).sort(), [...old].sort());
      await rollouts.abort(actor, remediation.id);

      const otherRelease = await insertRelease(t.platform, org, otherProduct, '9.0.0');
      await assert.rejects(rollouts.create(actor, { releaseId: otherRelease.id, selector: { deviceIds: old } }), {
        code: 'update.rollout_empty',
      });
    });

    it('refuses a rollout definition that breaks a rule, naming it', async () => {
      const [id] = await devices(1);
      const cases: [string, object][] = [
        ['empty selector', { selector: {} }],
        [
          'phases not increasing',
          {
            selector: { deviceIds: [id] },
            phases: [
              { percent: 50, soakSeconds: 0 },
              { percent: 50, soakSeconds: 0 },
              { percent: 100, soakSeconds: 0 },
            ],
          },
        ],
        ['last phase below 100', { selector: { deviceIds: [id] }, phases: [{ percent: 10, soakSeconds: 0 }] }],
        ['threshold above 1', { selector: { deviceIds: [id] }, successThreshold: 1.5 }],
        ['zero cap', { selector: { deviceIds: [id] }, maxConcurrentDownloads: 0 }],
        ['offer timeout under a minute', { selector: { deviceIds: [id] }, offerTimeoutSeconds: 59 }],
        ['fractional offer timeout', { selector: { deviceIds: [id] }, offerTimeoutSeconds: 600.5 }],
      ];
      for (const [what, input] of cases)
        await assert.rejects(
          rollouts.create(actor, { releaseId: release.id, ...input } as never),
          { code: 'update.rollout_invalid' },
          what,
        );
      await assert.rejects(rollouts.create(actor, { releaseId: '00000000-0000-0000-0000-000000000000', selector: { deviceIds: [id!] } }), {
        code: 'update.release_not_found',
      });
    });

    it('refuses malformed or foreign status messages with update.status_invalid, and keeps a finished state', async () => {
      const [id, outsider] = await devices(2);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: [id!] } });
      const send = (deviceId: string, payload: Buffer | string, channel = 'status') =>
        refusalOf(rollouts.deviceMessage(identityOf(org, deviceId, product), channel, Buffer.from(payload)));
      assert.equal(
        (await send(id!, statusPayload(rollout.id, 'downloading', release.targetName)))?.code,
        'update.status_invalid',
        'not offered yet',
      );
      await rollouts.tick();
      const bad = [
        'not json',
        JSON.stringify({ rolloutId: rollout.id, state: 'exploded', target: release.targetName, ts: 1 }),
        JSON.stringify({ rolloutId: rollout.id, state: 'succeeded', target: release.targetName, ts: 1, extra: true }),
        JSON.stringify({
          rolloutId: rollout.id,
          state: 'failed',
          target: release.targetName,
          ts: 1,
          error: { code: 'x', message: 'm'.repeat(501) },
        }),
        JSON.stringify({ rolloutId: rollout.id, state: 'succeeded', target: 'other/firmware-0.0.1.bin', ts: 1 }),
      ];
      for (const payload of bad) assert.equal((await send(id!, payload))?.code, 'update.status_invalid', payload.slice(0, 80));
      assert.equal(
        (await send(outsider!, statusPayload(rollout.id, 'succeeded', release.targetName)))?.code,
        'update.status_invalid',
        'a device not in the rollout',
      );
      assert.equal((await send(id!, '{}', 'firmware'))?.code, 'update.channel_unknown');

      assert.equal(await send(id!, statusPayload(rollout.id, 'succeeded', release.targetName)), null);
      assert.equal(await send(id!, statusPayload(rollout.id, 'downloading', release.targetName)), null);
      assert.equal((await rollouts.get(actor, rollout.id)).counts.succeeded, 1, 'a late message does not undo success');
    });

    it('gives back the slot of an offered device that stays silent past the offer timeout: withdrawn if it never started, failed with update.device_silent if it did', async () => {
      // Earlier tests' running rollouts share this clock: finish them so the tick's counts are this rollout's alone.
      for (const r of (await rollouts.list(actor, {})).rollouts)
        if (r.status === 'running' || r.status === 'paused') await rollouts.abort(actor, r.id);
      const ids = await devices(2);
      const rollout = await rollouts.create(actor, {
        releaseId: release.id,
        selector: { deviceIds: ids },
        maxConcurrentDownloads: 1,
        offerTimeoutSeconds: 600,
        failureThreshold: 0.5,
      });
      assert.equal(rollout.offerTimeoutSeconds, 600);
      assert.deepEqual(await rollouts.tick(), { offered: 1, withdrawn: 0, silent: 0 });
      const [offline] = await offered(rollout.id);
      const [other] = ids.filter((id) => id !== offline);
      assert.deepEqual(await named(offline!), [release.targetName]);

      t.clock.advance(600 * 1000);
      assert.deepEqual(await rollouts.tick(), { offered: 0, withdrawn: 0, silent: 0 }, 'not past the timeout yet');
      t.clock.advance(1000);
      assert.deepEqual(
        await rollouts.tick(),
        { offered: 1, withdrawn: 1, silent: 0 },
        'the silent pending device gives its slot to the next',
      );
      assert.deepEqual(await offered(rollout.id), [other], 'the withdrawn device waits behind the others instead of re-taking its slot');
      assert.deepEqual(await named(offline!), [], 'the director withdraws the release when the device next fetches');
      assert.equal((await rollouts.get(actor, rollout.id)).counts.pending, 2, 'a withdrawn device is waiting, not failed');

      await status(rollout.id, other!, 'downloading');
      t.clock.advance(300 * 1000);
      await status(rollout.id, other!, 'installing');
      t.clock.advance(400 * 1000);
      assert.deepEqual(
        await rollouts.tick(),
        { offered: 0, withdrawn: 0, silent: 0 },
        'silence counts from the last report, not from the offer',
      );
      t.clock.advance(201 * 1000);
      assert.deepEqual(
        await rollouts.tick(),
        { offered: 0, withdrawn: 0, silent: 1 },
        'the started device is failed; with 1 of 2 failed the rollout halts before offering',
      );
      const view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'halted', 'a silent device counts toward the failure threshold');
      assert.equal(view.counts.failed, 1);
      const failed = (await rollouts.devicesOf(actor, rollout.id, { state: 'failed' })).devices;
      assert.deepEqual(
        failed.map((d) => [d.deviceId, d.error?.code]),
        [[other, 'update.device_silent']],
      );
      await rollouts.abort(actor, rollout.id);
    });

    it("never enrols a device in two rollouts created at the same moment, and counts the loser's skips", async () => {
      for (let round = 0; round < 3; round++) {
        const ids = await devices(6);
        const [a, b] = await Promise.allSettled([
          rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids.slice(0, 4) } }),
          rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids.slice(2) } }),
        ]);
        assert.equal(a.status, 'fulfilled', String((a as PromiseRejectedResult).reason));
        assert.equal(b.status, 'fulfilled', String((b as PromiseRejectedResult).reason));
        const created = [a, b].map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<RolloutService['create']>>>).value);
        const rows = await t.platform.db
          .selectFrom('rollout_devices')
          .select(['device_id', 'rollout_id'])
          .where('device_id', 'in', ids)
          .execute();
        assert.equal(rows.length, 6, `round ${round}: every device is in exactly one rollout`);
        assert.equal(new Set(rows.map((r) => r.device_id)).size, 6);
        for (const [i, rollout] of created.entries()) {
          const mine = rows.filter((r) => r.rollout_id === rollout.id).length;
          assert.equal(rollout.enrolled, mine, `round ${round}: rollout ${i} reports the devices it holds`);
          assert.equal(rollout.skipped, 4 - mine, `round ${round}: rollout ${i} counts the devices the other took as skipped`);
          assert.equal((await rollouts.get(actor, rollout.id)).deviceCount, mine);
        }
        for (const rollout of created) await rollouts.abort(actor, rollout.id);
      }
    });

    it('releases the devices of an aborted or completed rollout for the next one', async () => {
      const ids = await devices(2);
      const first = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids } });
      await assert.rejects(rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids } }), {
        code: 'update.rollout_empty',
      });
      await rollouts.abort(actor, first.id);
      const second = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids } });
      assert.equal(second.enrolled, 2);
      await rollouts.tick();
      for (const id of ids) await status(second.id, id, 'succeeded');
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, second.id)).status, 'completed');
      assert.equal((await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids } })).enrolled, 2);
    });
  });
}
