/**
 * Rollout control against the real stores on both engines: transient failures offered again with
 * backoff and verified ones not; a fleet of 1,000 simulated devices whose own states the API's
 * counts must equal; the pause threshold; resuming a halted rollout; the operator's retry; the
 * schedule window.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { UpdateState } from '@bulwark/protocol';
import { cliActor, type Actor } from '../accounts/roles.js';
import { HOUR, MINUTE } from '../clock.js';
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

type Fate = 'healthy' | 'transient' | 'broken';

/** A simulated device: what it will do with an offer, and the state it last reported (its own view). */
interface SimDevice {
  id: string;
  fate: Fate;
  transientFailuresLeft: number;
  own: UpdateState | 'idle';
}

const STALLED = { code: 'update.download_stalled', message: 'no data for 30000 ms on 3 attempts' };
const HASH = { code: 'update.hash_mismatch', message: 'sha256 differs from the signed target' };

for (const engine of ENGINES) {
  describe(`rollout retries, pause, resume and windows [${engine.engine}]`, { skip: engine.skip }, () => {
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
      product = await hardwareProduct(t.platform, org, 'Retry sensor');
      release = await insertRelease(t.platform, org, product, '3.0.0');
      rollouts = t.platform.updates.rollouts;
    });
    after(() => t?.close());

    const devices = (count: number) => registerDevices(t.platform, org, product, `RR${++serial}`, count);
    const identity = (deviceId: string) => identityOf(org, deviceId, product);
    /** The targets the director names for the device now (fetching them may offer it, as for a real agent). */
    const named = async (deviceId: string) =>
      Object.keys(((await rollouts.directorTargets(identity(deviceId))).metadata.signed as { targets: Record<string, unknown> }).targets);
    /** A status the device publishes; a refusal (DeviceMessageRefusal) fails the test. */
    const report = (rolloutId: string, deviceId: string, state: UpdateState, error?: { code: string; message: string }) =>
      rollouts.deviceMessage(identity(deviceId), 'status', statusPayload(rolloutId, state, release.targetName, error));
    const allDevices = async (rolloutId: string) => {
      const rows = [];
      let cursor: string | undefined;
      do {
        const page = await rollouts.devicesOf(actor, rolloutId, { limit: 500, ...(cursor ? { cursor } : {}) });
        rows.push(...page.devices);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return rows;
    };

    it('a fleet of 1,000: devices failing transiently once succeed on retry, those failing for good stay failed, and the counts equal the devices own states', async () => {
      const ids = await devices(1000);
      // 10 % fail once for a transient reason, 5 % for good (a verified failure), the rest install cleanly.
      const fleet: SimDevice[] = ids.map((id, i) => {
        const fate: Fate = i % 20 === 0 ? 'broken' : i % 10 === 1 ? 'transient' : 'healthy';
        return { id, fate, transientFailuresLeft: fate === 'transient' ? 1 : 0, own: 'idle' };
      });
      assert.equal(fleet.filter((d) => d.fate === 'transient').length, 100);
      assert.equal(fleet.filter((d) => d.fate === 'broken').length, 50);
      const rollout = await rollouts.create(actor, {
        releaseId: release.id,
        selector: { deviceIds: ids },
        maxConcurrentDownloads: 1000,
        retry: { maxAttempts: 3, backoffSeconds: 600 },
      });

      /** Every device whose director targets name the release runs it, as an agent would. */
      const round = async () => {
        let ran = 0;
        for (const device of fleet) {
          // An agent does not try again an image it refused (hash), nor one it runs already.
          if (device.own === 'succeeded' || (device.fate === 'broken' && device.own === 'failed')) continue;
          if ((await named(device.id)).length === 0) continue;
          ran++;
          await report(rollout.id, device.id, 'downloading');
          device.own = 'downloading';
          if (device.transientFailuresLeft > 0) {
            device.transientFailuresLeft--;
            await report(rollout.id, device.id, 'failed', STALLED);
            device.own = 'failed';
          } else if (device.fate === 'broken') {
            await report(rollout.id, device.id, 'failed', HASH);
            device.own = 'failed';
          } else {
            await report(rollout.id, device.id, 'succeeded');
            device.own = 'succeeded';
          }
        }
        return ran;
      };

      await rollouts.tick();
      assert.equal(await round(), 1000, 'every device is offered once');
      let view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'running', '5 % verified failures stay under the 10 % halt; transient ones are not counted as failed');
      assert.equal(view.retrying, 100);
      assert.deepEqual([view.counts.succeeded, view.counts.failed, view.counts.pending], [850, 50, 100]);

      const transient = fleet.filter((d) => d.fate === 'transient');
      assert.deepEqual(await named(transient[0]!.id), [], 'during its backoff the director withdraws the release');
      await rollouts.tick();
      assert.equal(await round(), 0, 'nothing is offered again before the backoff passed');

      t.clock.advance(10 * MINUTE + 1000);
      const offered = await rollouts.tick();
      assert.equal(offered.offered, 100, 'the transient failures (and only they) are offered again once the backoff passed');
      assert.equal(await round(), 100);

      await rollouts.tick();
      view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'completed', '950 of 1,000 succeeded: the success threshold (95 %) is met');
      assert.deepEqual([view.counts.succeeded, view.counts.failed, view.retrying], [950, 50, 0]);

      // The API's counts equal what the devices themselves say, device by device.
      const own: Record<string, number> = {};
      for (const device of fleet) own[device.own] = (own[device.own] ?? 0) + 1;
      assert.deepEqual(own, { succeeded: view.counts.succeeded, failed: view.counts.failed });
      const rows = await allDevices(rollout.id);
      assert.equal(rows.length, 1000);
      const byId = new Map(fleet.map((d) => [d.id, d]));
      for (const row of rows) {
        const device = byId.get(row.deviceId)!;
        assert.equal(row.state, device.own, `device ${row.deviceId} (${device.fate})`);
        assert.equal(row.attempts, device.fate === 'transient' ? 2 : 1, `attempts of a ${device.fate} device`);
        if (device.fate === 'broken') assert.deepEqual(row.error, HASH);
        if (device.fate === 'transient') assert.equal(row.retryAt, null);
      }
    });

    it('stops retrying after maxAttempts, and a device that went silent is offered again while it has attempts left', async () => {
      const [flaky, silent] = await devices(2);
      const rollout = await rollouts.create(actor, {
        releaseId: release.id,
        selector: { deviceIds: [flaky!, silent!] },
        failureThreshold: 1,
        offerTimeoutSeconds: 60,
        retry: { maxAttempts: 2, backoffSeconds: 60 },
      });
      await rollouts.tick();
      for (const id of [flaky!, silent!]) {
        assert.deepEqual(await named(id), [release.targetName]);
        await report(rollout.id, id, 'downloading');
      }
      await report(rollout.id, flaky!, 'failed', STALLED);
      t.clock.advance(61_000);
      const expired = await rollouts.tick();
      assert.equal(expired.silent, 1, 'the silent device timed out');
      let rows = await allDevices(rollout.id);
      const row = (id: string) => rows.find((r) => r.deviceId === id)!;
      assert.equal(row(silent!).state, 'pending', 'silence is transient: it waits for a retry');
      assert.deepEqual(row(silent!).error?.code, 'update.device_silent');
      assert.ok(row(silent!).retryAt, 'with a retry time');

      t.clock.advance(2 * MINUTE);
      await rollouts.tick();
      for (const id of [flaky!, silent!]) {
        assert.deepEqual(await named(id), [release.targetName], 'offered a second time');
        await report(rollout.id, id, 'downloading');
        await report(rollout.id, id, 'failed', STALLED);
      }
      t.clock.advance(HOUR);
      await rollouts.tick();
      rows = await allDevices(rollout.id);
      for (const id of [flaky!, silent!]) {
        assert.equal(row(id).state, 'failed', 'the second of two attempts failing is final');
        assert.equal(row(id).attempts, 2);
      }
      await rollouts.abort(actor, rollout.id);
    });

    it('pauses at the pause threshold, once per phase; a halted rollout resumes only below its failure threshold', async () => {
      const ids = await devices(10);
      const rollout = await rollouts.create(actor, {
        releaseId: release.id,
        selector: { deviceIds: ids },
        pauseThreshold: 0.1,
        failureThreshold: 0.3,
      });
      await rollouts.tick();
      for (const id of ids) assert.deepEqual(await named(id), [release.targetName]);
      await report(rollout.id, ids[0]!, 'failed', HASH);
      await rollouts.tick();
      let view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'paused', '1 failure in 10 reaches the 10 % pause threshold');
      const paused = (await t.platform.audit.query({ organizationId: org, action: 'update.rollout_paused' })).entries.find(
        (e) => e.target.id === rollout.id,
      );
      assert.equal(paused?.actor.type, 'system');
      assert.equal(paused?.details.reason, 'pause_threshold');

      await rollouts.resume(actor, rollout.id);
      await report(rollout.id, ids[1]!, 'rolled_back', {
        code: 'update.health_check_failed',
        message: 'the health check reported failure',
      });
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).status, 'running', 'resumed past the pause: not paused again in this phase');

      await report(rollout.id, ids[2]!, 'failed', HASH);
      await rollouts.tick();
      view = await rollouts.get(actor, rollout.id);
      assert.equal(view.status, 'halted', '3 of 10 reach the 30 % halt');
      await assert.rejects(rollouts.resume(actor, rollout.id), { code: 'update.rollout_still_failing' });

      await assert.rejects(rollouts.update(actor, rollout.id, { failureThreshold: 0.3, pauseThreshold: 0.5 }), {
        code: 'update.rollout_invalid',
      });
      const changed = await rollouts.update(actor, rollout.id, { failureThreshold: 0.5 });
      assert.equal(changed.failureThreshold, 0.5);
      const audit = (await t.platform.audit.query({ organizationId: org, action: 'update.rollout_changed' })).entries.find(
        (e) => e.target.id === rollout.id,
      );
      assert.deepEqual(
        [audit?.details.before, audit?.details.after].map((d) => (d as { failureThreshold: number }).failureThreshold),
        [0.3, 0.5],
      );
      assert.equal((await rollouts.resume(actor, rollout.id)).status, 'running');
      await rollouts.abort(actor, rollout.id);
      await assert.rejects(rollouts.update(actor, rollout.id, { failureThreshold: 0.6 }), { code: 'update.rollout_status' });
    });

    it("an operator's retry offers failed and rolled-back devices again with their attempts counted afresh", async () => {
      const ids = await devices(4);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids }, failureThreshold: 1 });
      await rollouts.tick();
      for (const id of ids) assert.deepEqual(await named(id), [release.targetName]);
      await report(rollout.id, ids[0]!, 'failed', HASH);
      await report(rollout.id, ids[1]!, 'rolled_back', { code: 'update.health_check_failed', message: 'reported failure' });
      await report(rollout.id, ids[2]!, 'succeeded');

      t.clock.advance(HOUR);
      await rollouts.tick();
      assert.equal(
        (await allDevices(rollout.id)).find((r) => r.deviceId === ids[0])!.state,
        'failed',
        'a verified failure is never retried by itself',
      );

      const one = await rollouts.retry(actor, rollout.id, { deviceIds: [ids[0]!, ids[2]!] });
      assert.deepEqual(one.retried, [ids[0]], 'only failed or rolled-back devices are retried; the succeeded one is left alone');
      const rest = await rollouts.retry(actor, rollout.id, {});
      assert.deepEqual(rest.retried, [ids[1]]);
      await rollouts.tick();
      const rows = await allDevices(rollout.id);
      for (const id of [ids[0]!, ids[1]!]) {
        const row = rows.find((r) => r.deviceId === id)!;
        assert.equal(row.state, 'pending');
        assert.equal(row.attempts, 1, 'counted afresh, then offered again');
        assert.ok(row.offeredAt);
        assert.deepEqual(await named(id), [release.targetName]);
      }
      const audited = (await t.platform.audit.query({ organizationId: org, action: 'update.rollout_devices_retried' })).entries.filter(
        (e) => e.target.id === rollout.id,
      );
      assert.equal(audited.length, 2);
      await rollouts.abort(actor, rollout.id);
    });

    it('swaps a halted rollout to a fixed, newer release: every device waits again from the first phase, paused until resumed', async () => {
      const ids = await devices(4);
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: ids }, failureThreshold: 0.5 });
      await rollouts.tick();
      for (const id of ids) assert.deepEqual(await named(id), [release.targetName]);
      await report(rollout.id, ids[0]!, 'succeeded');
      await report(rollout.id, ids[1]!, 'rolled_back', {
        code: 'update.health_check_failed',
        message: 'the health check reported failure',
      });
      await report(rollout.id, ids[2]!, 'failed', HASH);
      await rollouts.tick();
      assert.equal((await rollouts.get(actor, rollout.id)).status, 'halted');

      const older = await insertRelease(t.platform, org, product, '2.9.0');
      const otherProduct = await hardwareProduct(t.platform, org, 'Another sensor');
      const foreign = await insertRelease(t.platform, org, otherProduct, '9.0.0');
      const fixed = await insertRelease(t.platform, org, product, '3.0.1');
      await assert.rejects(
        rollouts.swapRelease(actor, rollout.id, older.id),
        { code: 'update.rollout_invalid' },
        'an older release is no fix',
      );
      await assert.rejects(rollouts.swapRelease(actor, rollout.id, foreign.id), { code: 'update.rollout_invalid' }, 'another product');
      await assert.rejects(rollouts.swapRelease(actor, rollout.id, 'no-such-release'), { code: 'update.release_not_found' });

      const swapped = await rollouts.swapRelease(actor, rollout.id, fixed.id);
      assert.deepEqual([swapped.status, swapped.releaseId, swapped.currentPhase], ['paused', fixed.id, 0]);
      const rows = await allDevices(rollout.id);
      assert.ok(rows.every((r) => r.state === 'pending' && r.attempts === 0 && r.offeredAt === null && r.error === null));
      assert.deepEqual(await named(ids[0]!), [], 'nothing is named while paused');
      await assert.rejects(rollouts.swapRelease(actor, rollout.id, fixed.id), { code: 'update.rollout_invalid' }, 'not newer than itself');

      await rollouts.resume(actor, rollout.id);
      await rollouts.tick();
      for (const id of ids)
        assert.deepEqual(await named(id), [fixed.targetName], 'the fixed image, also for the device that ran the old one');
      await assert.rejects(
        rollouts.swapRelease(actor, rollout.id, fixed.id),
        { code: 'update.rollout_status' },
        'a running rollout is paused first',
      );
      const audited = (await t.platform.audit.query({ organizationId: org, action: 'update.rollout_release_swapped' })).entries.find(
        (e) => e.target.id === rollout.id,
      );
      assert.deepEqual((audited?.details.to as { version: string }).version, '3.0.1');
      await rollouts.abort(actor, rollout.id);
    });

    it('offers devices only inside the schedule window, in its time zone', async () => {
      const [d1, d2] = await devices(2);
      /** A time of day `days` after today's date on the platform clock, in UTC. */
      const dayAt = (days: number, hour: number, minute: number) => {
        const today = new Date(t.clock.now());
        return Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + days, hour, minute);
      };
      // 12:00 UTC is 13:00 (winter) or 14:00 (summer) in Berlin: outside 02:00–04:00 there.
      t.clock.set(dayAt(1, 12, 0));
      const window = { start: '02:00', end: '04:00', timeZone: 'Europe/Berlin' };
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: [d1!, d2!] }, window });
      assert.deepEqual(rollout.window, window);
      const ticked = await rollouts.tick();
      assert.equal(ticked.offered, 0, 'no offer outside the window');
      assert.deepEqual(await named(d1!), [], 'nor when the device asks');

      // 01:30 UTC the next day: 02:30 in Berlin in winter, 03:30 in summer; inside either way.
      t.clock.set(dayAt(1, 1, 30));
      assert.deepEqual(await named(d1!), [release.targetName], 'inside the window a device asking is offered');
      assert.equal((await rollouts.tick()).offered, 1, 'and the tick offers the other');
      await rollouts.abort(actor, rollout.id);
    });
  });
}
