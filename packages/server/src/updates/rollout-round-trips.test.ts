/**
 * What one device's step through a rollout costs in database round trips, counted on a real
 * database of each engine below Kysely (testing/query-counter.ts): the offer (a tick), the
 * director targets fetch, the status messages (one at a time, and from many devices at once: their
 * successes committed together, rollout-progress.ts), the signed version reports (committed
 * together too). Each figure is
 * pinned per device over a group of devices with a slack smaller than the group, so a change
 * that brings back a query per device (an N+1, a read before every write) fails here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor, type Actor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, type TestDevice } from '../testing/devices.js';
import { countQueries, type QueryCounter } from '../testing/query-counter.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import {
  hardwareProduct,
  identityOf,
  insertRelease,
  registerDevices,
  ROLLOUTS_TICKED_BY_TEST,
  signedReport,
  statusPayload,
  type TestRelease,
} from '../testing/rollout-fixtures.js';

const DEVICES = 12;

/** Background jobs of the test platform may run a query or two while a step is counted; an N+1 costs DEVICES. */
const SLACK = 4;

for (const engine of ENGINES) {
  describe(`rollout round trips per device [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let product: string;
    let actor: Actor;
    let release: TestRelease;
    let counter: QueryCounter;

    before(async () => {
      t = await startTestPlatform(engine, ROLLOUTS_TICKED_BY_TEST);
      org = await organizationIdOf(t.platform, t.org);
      actor = cliActor(org, 'test');
      product = await hardwareProduct(t.platform, org, 'Counted sensor');
      release = await insertRelease(t.platform, org, product, '3.0.0');
      counter = countQueries();
    });
    after(async () => {
      counter?.stop();
      await t?.close();
    });

    /** Round trips `step` made, with the statements, for the message when it is over the bound. */
    async function counted(step: () => Promise<unknown>): Promise<{ total: number; statements: string }> {
      counter.reset();
      await step();
      const total = counter.total;
      const statements = counter
        .bySql()
        .map(([text, n]) => `${n}× ${text}`)
        .join('\n');
      return { total, statements };
    }
    function atMost(what: string, spent: { total: number; statements: string }, perDevice: number): void {
      assert.ok(
        spent.total <= perDevice * DEVICES + SLACK,
        `${what}: ${spent.total} round trips for ${DEVICES} devices, at most ${perDevice} each (+${SLACK}) expected:\n${spent.statements}`,
      );
    }

    it('offers, signs, and takes progress for a group of devices at a fixed cost per device, none per device for the tick', async () => {
      const devices = await registerDevices(t.platform, org, product, 'RT', DEVICES);
      const rollouts = t.platform.updates.rollouts;
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: devices } });

      // The tick offers the whole group in a few statements whatever its size.
      const tick = await counted(() => rollouts.tick());
      assert.ok(tick.total <= 15, `a tick offering ${DEVICES} devices took ${tick.total} round trips:\n${tick.statements}`);
      assert.equal((await rollouts.get(actor, rollout.id)).counts.pending, DEVICES);

      // First fetch: one read of device, rollout, release and stored metadata; one write of the signed document.
      const identities = devices.map((id) => identityOf(org, id, product));
      const first = await counted(async () => {
        for (const identity of identities) await rollouts.directorTargets(identity);
      });
      atMost('first director targets fetch', first, 2);
      // Polled again with nothing changed: the read alone.
      const again = await counted(async () => {
        for (const identity of identities) await rollouts.directorTargets(identity);
      });
      atMost('director targets fetch, unchanged', again, 1);

      // Progress: one statement per message.
      for (const state of ['downloading', 'installing', 'rebooting', 'verifying'] as const) {
        const progress = await counted(async () => {
          for (const identity of identities)
            await rollouts.deviceMessage(identity, 'status', statusPayload(rollout.id, state, release.targetName));
        });
        atMost(`status ${state}`, progress, 1);
      }
      // Success: the row and the device's firmware version in one transaction (BEGIN, two updates, COMMIT).
      const success = await counted(async () => {
        for (const identity of identities)
          await rollouts.deviceMessage(identity, 'status', statusPayload(rollout.id, 'succeeded', release.targetName));
      });
      atMost('status succeeded', success, 4);
      const view = await rollouts.get(actor, rollout.id);
      assert.equal(view.counts.succeeded, DEVICES);
      const firmware = await t.platform.db.selectFrom('devices').select('firmware_version').where('id', 'in', devices).execute();
      assert.deepEqual(new Set(firmware.map((d) => d.firmware_version)), new Set([release.version]));

      // A late message after success changes nothing (the full path reads the row and drops it).
      await rollouts.deviceMessage(identities[0]!, 'status', statusPayload(rollout.id, 'downloading', release.targetName));
      assert.equal(
        (await rollouts.devicesOf(actor, rollout.id, { limit: 500 })).devices.find((d) => d.deviceId === devices[0])!.state,
        'succeeded',
      );
    });

    it('commits the statuses of devices reporting at once in a shared transaction, each settled only once its move is committed', async () => {
      const devices = await registerDevices(t.platform, org, product, 'RT-GROUP', DEVICES);
      const rollouts = t.platform.updates.rollouts;
      const rollout = await rollouts.create(actor, { releaseId: release.id, selector: { deviceIds: devices } });
      await rollouts.tick();
      const identities = devices.map((id) => identityOf(org, id, product));
      for (const identity of identities) await rollouts.directorTargets(identity);
      const stateOf = async (deviceId: string) =>
        (
          await t.platform.db
            .selectFrom('rollout_devices')
            .select('state')
            .where('rollout_id', '=', rollout.id)
            .where('device_id', '=', deviceId)
            .executeTakeFirstOrThrow()
        ).state;

      for (const state of ['downloading', 'succeeded'] as const) {
        const seen: string[] = [];
        const spent = await counted(() =>
          Promise.all(
            identities.map(async (identity) => {
              await rollouts.deviceMessage(identity, 'status', statusPayload(rollout.id, state, release.targetName));
              // Settled: the move is committed (on PostgreSQL this read runs on another connection of the pool).
              seen.push(await stateOf(identity.deviceId));
            }),
          ),
        );
        assert.deepEqual(
          seen,
          devices.map(() => state),
        );
        const begins = spent.statements.split('\n').filter((line) => /^\d+× begin/i.test(line));
        const transactions = begins.reduce((sum, line) => sum + Number(line.split('×')[0]), 0);
        // One statement per device (two on success) and this test's read of it; the moves of devices
        // arriving at once share a transaction (one commit, not one each), and a transaction per
        // device would be two more statements per device.
        const perDevice = (state === 'succeeded' ? 2 : 1) + 1;
        assert.ok(
          transactions >= 1 && transactions <= 3,
          `${transactions} transactions for ${DEVICES} devices' ${state}:\n${spent.statements}`,
        );
        atMost(`status ${state} from ${DEVICES} devices at once`, spent, perDevice);
      }
      const firmware = await t.platform.db.selectFrom('devices').select('firmware_version').where('id', 'in', devices).execute();
      assert.deepEqual(new Set(firmware.map((d) => d.firmware_version)), new Set([release.version]));
    });

    it('stores the signed version reports of devices reporting at once in a shared transaction, each settled only once committed', async () => {
      const devices: TestDevice[] = [];
      for (let i = 0; i < DEVICES; i++) devices.push(await provisionTestDevice(t.platform, org, product, `RT-REPORT-${i}`));
      const rollouts = t.platform.updates.rollouts;
      const report = (device: TestDevice, counter: number) =>
        Buffer.from(
          signedReport(
            {
              deviceId: device.id,
              counter,
              ts: Date.now(),
              running: { target: release.targetName, version: `3.0.${counter}`, sha256: release.sha256 },
              slot: 'b',
              securityVersion: 1,
              errors: [],
            },
            device.key,
          ),
        );
      const send = (device: TestDevice, counter: number) =>
        rollouts.deviceMessage(identityOf(org, device.id, product), 'report', report(device, counter));
      // Each device's first report (stored by an insert, after the update found no row): not counted.
      for (const device of devices) await send(device, 1);
      const storedOf = async (deviceId: string) =>
        (
          await t.platform.db
            .selectFrom('device_version_reports')
            .select('counter')
            .where('device_id', '=', deviceId)
            .executeTakeFirstOrThrow()
        ).counter;
      const seen: number[] = [];
      const spent = await counted(() =>
        Promise.all(
          devices.map(async (device) => {
            await send(device, 2);
            // Settled: the report is committed (on PostgreSQL this read runs on another connection of the pool).
            seen.push(Number(await storedOf(device.id)));
          }),
        ),
      );
      assert.deepEqual(
        seen,
        devices.map(() => 2),
      );
      const begins = spent.statements.split('\n').filter((line) => /^\d+× begin/i.test(line));
      const transactions = begins.reduce((sum, line) => sum + Number(line.split('×')[0]), 0);
      // The certificate's key, the report, the device's version, and this test's read; a transaction per report is two more each.
      assert.ok(transactions <= 3, `${transactions} transactions for ${DEVICES} devices' reports:\n${spent.statements}`);
      // The statements besides BEGIN and COMMIT, at most four a device: the transactions are bounded
      // just above (a loaded machine spread the 12 reports over 3 group commits: 54 round trips, which
      // a bound on the total, 4 a device + 4, refused while allowing the third transaction).
      atMost(`version reports from ${DEVICES} devices at once`, { ...spent, total: spent.total - 2 * transactions }, 4);
      const firmware = await t.platform.db
        .selectFrom('devices')
        .select('firmware_version')
        .where(
          'id',
          'in',
          devices.map((d) => d.id),
        )
        .execute();
      assert.deepEqual(new Set(firmware.map((d) => d.firmware_version)), new Set(['3.0.2']));

      // A replayed counter among them is refused alone; the others are stored.
      const [replayed, ...others] = devices;
      const results = await Promise.allSettled([send(replayed!, 2), ...others.map((device) => send(device, 3))]);
      assert.equal(results[0]!.status, 'rejected');
      assert.match(String((results[0] as PromiseRejectedResult).reason), /not above the last accepted counter/);
      assert.deepEqual(
        results.slice(1).map((r) => r.status),
        others.map(() => 'fulfilled'),
      );
    });

    it('refuses progress for another target or before the offer, though the one-statement path did not take it', async () => {
      const [waiting] = await registerDevices(t.platform, org, product, 'RT-REF', 1);
      const other = await insertRelease(t.platform, org, product, '3.1.0');
      const rollouts = t.platform.updates.rollouts;
      const rollout = await rollouts.create(actor, { releaseId: other.id, selector: { deviceIds: [waiting!] } });
      const identity = identityOf(org, waiting!, product);
      await assert.rejects(
        rollouts.deviceMessage(identity, 'status', statusPayload(rollout.id, 'downloading', other.targetName)),
        /has not offered this device its release yet/,
      );
      await rollouts.tick();
      await assert.rejects(
        rollouts.deviceMessage(identity, 'status', statusPayload(rollout.id, 'downloading', release.targetName)),
        new RegExp(`installs ${other.targetName}, not ${release.targetName}`),
      );
      const row = (await rollouts.devicesOf(actor, rollout.id, { limit: 10 })).devices[0]!;
      assert.equal(row.state, 'pending');
    });
  });
}
