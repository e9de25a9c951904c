import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock, systemClock } from '../clock.js';
import { JobLeaseStore } from '../ops/job-lease-store.js';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { BackgroundJobs, type JobLog } from './jobs.js';

const quiet: JobLog = { error: () => undefined, info: () => undefined };

for (const engine of ENGINES) {
  describe(`deployment-wide background jobs [${engine.engine}]`, { skip: engine.skip }, () => {
    let database: TestDatabase;
    let store: JobLeaseStore;
    before(async () => {
      database = await engine.create();
      store = new JobLeaseStore(database.db);
    });
    after(() => database?.close());

    it('a lease has one holder at a time: taken when free, renewed by its holder, taken over once it lapsed or was released', async () => {
      const now = 1_000_000;
      assert.equal(await store.acquire('backup', 'node-a', now, now + 60_000), true, 'a free lease is taken');
      assert.equal(await store.acquire('backup', 'node-b', now + 1, now + 60_001), false, 'held by another node');
      assert.equal(await store.acquire('backup', 'node-a', now + 30_000, now + 90_000), true, 'its holder renews it');
      assert.equal(await store.acquire('backup', 'node-b', now + 60_001, now + 120_000), false, 'the renewal moved its end');
      await store.renew('node-a', now + 150_000);
      assert.equal(await store.acquire('backup', 'node-b', now + 100_000, now + 160_000), false, 'the heartbeat moved its end');
      assert.equal(await store.acquire('backup', 'node-b', now + 150_000, now + 210_000), true, 'lapsed: another node takes it');
      assert.equal(await store.acquire('backup', 'node-a', now + 150_001, now + 210_001), false, 'the old holder no longer has it');
      assert.equal(await store.acquire('rollouts', 'node-a', now + 150_001, now + 210_001), true, 'each job has its own lease');
      await store.release('node-b');
      assert.equal(await store.acquire('backup', 'node-a', now + 150_002, now + 210_002), true, 'released: taken at once');
      await store.release('node-a');
    });

    it('two nodes race for the same free lease: exactly one wins', async () => {
      const clock = new ManualClock(5_000_000);
      const wins = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.acquire('race', `node-${i}`, clock.now(), clock.now() + 60_000)),
      );
      assert.equal(wins.filter(Boolean).length, 1);
    });

    it('a job runs on one of two nodes, and on the other once the first stops', async () => {
      const runs = { a: 0, b: 0 };
      const node = (name: 'a' | 'b') => {
        const jobs = new BackgroundJobs(quiet, { store, holder: `node-${name}`, clock: systemClock, leaseMs: 5_000 });
        jobs.deploymentWide('assessment', 40, 'failed', async () => {
          runs[name]++;
        });
        return jobs;
      };
      const a = node('a');
      const b = node('b');
      try {
        await sleep(800);
        assert.ok(runs.a + runs.b >= 5, `the job ran (${runs.a} + ${runs.b} runs)`);
        assert.equal(Math.min(runs.a, runs.b), 0, `one node ran it, not both (a ${runs.a}, b ${runs.b})`);
        const [first, second, name] = runs.a > 0 ? [a, b, 'b' as const] : [b, a, 'a' as const];
        await first.stop();
        const before = runs[name];
        await sleep(500);
        assert.ok(runs[name] > before, 'the other node took the job once the first released its lease');
        await second.stop();
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  });
}
