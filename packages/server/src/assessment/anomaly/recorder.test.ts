/** The behaviour recorder against real storage (both engines): batched minute rows, bounded memory, failures kept only for real devices. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ENGINES, type TestDatabase } from '../../testing/engines.js';
import { migrateToLatest } from '../../storage/migrate.js';
import { ADDRESSES_PER_HOUR, BehaviourRecorder } from './recorder.js';
import { BehaviourStore } from './store.js';

const MINUTE = 60_000;

for (const engine of ENGINES) {
  describe(`behaviour recorder [${engine.engine}]`, { skip: engine.skip }, () => {
    let database: TestDatabase;
    let store: BehaviourStore;
    let now = 1_700_000_000_000 - (1_700_000_000_000 % MINUTE);
    const subject = (deviceId: string) => ({ deviceId, organizationId: 'org', productId: 'prod' });

    before(async () => {
      database = await engine.create();
      await migrateToLatest(database);
      store = new BehaviourStore(database.db);
    });
    after(() => database?.close());

    it('adds each flush to the minute row, starts the counters again, and moves on with the minute', async () => {
      const recorder = new BehaviourRecorder(store, () => now, 100, randomUUID);
      const counts = recorder.attach(subject('dev-1'), '10.0.0.1');
      counts.messages += 5;
      counts.bytes += 500;
      await recorder.flush();
      assert.equal(counts.messages, 0);
      counts.messages += 3;
      counts.aclDenials++;
      await recorder.flush();
      now += MINUTE;
      counts.messages += 7;
      await recorder.flush();
      const rows = await store.window(now - 10 * MINUTE);
      assert.deepEqual(
        rows.map((r) => [r.minute - now, r.messages, Number(r.bytes), r.connects, r.acl_denials, r.addresses]),
        [
          [-MINUTE, 8, 500, 1, 1, 1],
          [0, 7, 0, 0, 0, 0],
        ],
      );
      assert.equal(recorder.totals.messages, 15);
    });

    it('counts the distinct source addresses of each minute and hour, whether a device uses one address or several', async () => {
      const recorder = new BehaviourRecorder(store, () => now, 100, randomUUID);
      for (const address of ['10.2.0.1', '10.2.0.1']) recorder.attach(subject('one-address'), address);
      for (const address of ['10.3.0.1', '10.3.0.2', '10.3.0.1', '10.3.0.3']) recorder.attach(subject('three-addresses'), address);
      await recorder.flush();
      const rows = await store.window(now - MINUTE);
      const minuteAddresses = (deviceId: string) => rows.find((r) => r.device_id === deviceId && r.minute === now)?.addresses;
      assert.deepEqual([minuteAddresses('one-address'), minuteAddresses('three-addresses')], [1, 3]);
      const hour = await store.distinctAddresses(now - 3_600_000);
      assert.deepEqual([hour.get('one-address'), hour.get('three-addresses')], [1, 3]);
    });

    it('keeps authentication failures only for a device that exists, and forgets devices with no session once written', async () => {
      const recorder = new BehaviourRecorder(store, () => now, 100, randomUUID);
      recorder.authFailure('no-such-device', '192.0.2.1');
      assert.equal(recorder.trackedDevices, 1);
      await recorder.flush();
      assert.equal(recorder.trackedDevices, 0);
      assert.equal((await store.window(now)).filter((r) => r.device_id === 'no-such-device').length, 0);
    });

    it('deletes behaviour older than the retention, and keeps the rest', async () => {
      const recorder = new BehaviourRecorder(store, () => now, 100, randomUUID);
      const counts = recorder.attach(subject('old-1'), '10.0.0.9');
      counts.messages += 1;
      await recorder.flush();
      const written = now;
      now += 15 * 86_400_000;
      counts.messages += 2;
      await recorder.flush();
      const deleted = await store.prune(now - 14 * 86_400_000);
      assert.ok(deleted >= 1);
      const rows = (await store.window(0)).filter((r) => r.device_id === 'old-1');
      assert.deepEqual(
        rows.map((r) => [r.minute === written, r.messages]),
        [[false, 2]],
      );
    });

    it('bounds the devices and addresses it holds', async () => {
      const recorder = new BehaviourRecorder(store, () => now, 2, randomUUID);
      recorder.attach(subject('b-1'), '10.0.0.1');
      recorder.attach(subject('b-2'), '10.0.0.1');
      const third = recorder.attach(subject('b-3'), '10.0.0.1');
      third.messages += 1000;
      assert.equal(recorder.trackedDevices, 2);
      assert.equal(recorder.totals.untracked, 1);
      for (let i = 0; i < ADDRESSES_PER_HOUR + 50; i++) recorder.attach(subject('b-1'), `10.1.${i >> 8}.${i & 255}`);
      await recorder.flush();
      const addresses = await store.distinctAddresses(now - 3_600_000);
      assert.equal(addresses.get('b-1'), ADDRESSES_PER_HOUR);
      assert.equal(addresses.has('b-3'), false);
    });
  });
}
