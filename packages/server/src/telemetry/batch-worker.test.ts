import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { isStorageUnavailable } from '../errors.js';
import { openDatabase, type DatabaseHandle } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { SqliteBatchWorker } from './batch-worker.js';
import { TelemetryWriter } from './ingest.js';
import { TelemetryStore, type TelemetryRow } from './store.js';

let n = 0;
function rows(count: number, device = 'dev-w'): TelemetryRow[] {
  return Array.from({ length: count }, () => {
    n++;
    return {
      organization_id: 'org-w',
      device_id: device,
      ts: 1_764_000_000_000 + n,
      received_at: 1_764_000_001_000 + n,
      data: `{"n":${n}}`,
    };
  });
}

/** A batch the database refuses: its 3rd row breaks NOT NULL. */
function refused(): TelemetryRow[] {
  const batch = rows(5, 'dev-refused');
  (batch[2] as { data: unknown }).data = null;
  return batch;
}

function statuses(results: PromiseSettledResult<unknown>[]): string[] {
  return results.map((r) => r.status);
}

/** The worker thread itself, to end it as a crash would. */
function threadOf(writer: SqliteBatchWorker): Promise<Worker> {
  return (writer as unknown as { worker: Promise<Worker> }).worker;
}

describe('telemetry batches committed by a worker thread [sqlite]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-batch-worker-'));
  let handle: DatabaseHandle;
  let store: TelemetryStore;
  const errors: object[] = [];
  const log = { error: (details: object) => errors.push(details) };

  before(async () => {
    handle = openDatabase({ url: 'sqlite', dataDir: dir });
    await migrateToLatest(handle);
    store = new TelemetryStore(handle.db, 'sqlite');
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves a write once its rows are committed: the main connection reads them at once, each value in place', async () => {
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    try {
      const device = 'dev-visible';
      for (const size of [1, 3, 21, 250]) {
        const batch = rows(size, device);
        const before = await store.count(device);
        await worker.insert(batch);
        assert.equal(await store.count(device), before + size, `${size} rows visible after resolve`);
      }
      const stored = await store.range(device, 0, Number.MAX_SAFE_INTEGER, 1000);
      assert.equal(stored.length, 275);
      assert.deepEqual(
        stored.slice(0, 2).map((r) => ({ ...r })),
        stored.slice(0, 2).map((r) => ({ ...r, organization_id: 'org-w', device_id: device, data: `{"n":${r.ts - 1_764_000_000_000}}` })),
      );
    } finally {
      await worker.stop();
    }
  });

  it(
    'names its thread by its kernel ID (Linux): a thread of this process, not the event loop',
    { skip: process.platform !== 'linux' },
    async () => {
      const worker = await SqliteBatchWorker.start(handle.file!, log);
      try {
        const id = worker.osThreadId;
        assert.ok(id !== null && id !== process.pid, `thread ${id}`);
        assert.ok(existsSync(`/proc/${process.pid}/task/${id}/stat`), 'one of the threads of this process');
      } finally {
        await worker.stop();
      }
    },
  );

  it('rejects a failing batch alone, with its SQLite code, and commits the batches around it', async () => {
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    try {
      const before = await store.count();
      const results = await Promise.allSettled([worker.insert(rows(7)), worker.insert(refused()), worker.insert(rows(9))]);
      assert.deepEqual(statuses(results), ['fulfilled', 'rejected', 'fulfilled']);
      const error = (results[1] as PromiseRejectedResult).reason as Error & { code?: string };
      assert.equal(error.code, 'SQLITE_CONSTRAINT_NOTNULL');
      assert.equal(isStorageUnavailable(error), false, 'a refused row is not the storage being unavailable');
      assert.equal(await store.count(), before + 16);
      assert.equal(await store.count('dev-refused'), 0, 'nothing of the refused batch');
    } finally {
      await worker.stop();
    }
  });

  it('through the telemetry writer: a failed batch rejects exactly its own messages', async () => {
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    const writerStore = new TelemetryStore(handle.db, 'sqlite');
    writerStore.writeBatchesWith(worker);
    // One message per batch, so the refused message shares its transaction with nobody.
    const writer = new TelemetryWriter(writerStore, { maxBatch: 1, maxPending: 100 });
    try {
      const before = await store.count();
      const results = await Promise.allSettled([writer.write(rows(1)), writer.write(refused()), writer.write(rows(1))]);
      assert.deepEqual(statuses(results), ['fulfilled', 'rejected', 'fulfilled']);
      assert.equal(await store.count(), before + 2);
      assert.equal(writer.stats.failedBatches, 1);
    } finally {
      await worker.stop();
    }
  });

  it('fails the writes a killed worker held as storage unavailable, reports it, and starts a new one for the next write', async () => {
    errors.length = 0;
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    try {
      const before = await store.count();
      const thread = await threadOf(worker);
      const inFlight = Array.from({ length: 20 }, () => worker.insert(rows(200)));
      await thread.terminate();
      const settled = await Promise.allSettled(inFlight);
      const failed = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const f of failed) assert.ok(isStorageUnavailable(f.reason), String(f.reason));
      assert.ok(failed.length > 0, 'the kill came before some batch was answered');
      assert.equal(worker.crashes, 1);
      assert.equal(errors.length, 1, 'the crash was reported');
      // What was answered committed is there, whole batches only.
      const committed = settled.length - failed.length;
      assert.equal(await store.count(), before + committed * 200);

      await worker.insert(rows(3, 'dev-after-crash'));
      assert.equal(await store.count('dev-after-crash'), 3);
      assert.notEqual(await threadOf(worker), thread, 'a new thread');
    } finally {
      await worker.stop();
    }
  });

  it('waits for the write lock either way: a batch while the main connection holds it, and main-connection writes between batches', async () => {
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    try {
      const before = await store.count('dev-contended');
      let committed = false;
      let written: Promise<void> = Promise.resolve();
      await handle.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('telemetry_usage').where('device_id', '=', 'dev-contended').execute();
        written = worker.insert(rows(10, 'dev-contended')).then(() => {
          committed = true;
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(committed, false, 'the batch waits while the main connection holds the lock');
      });
      await written;
      assert.equal(await store.count('dev-contended'), before + 10);

      // Batches back to back on the worker; the main connection writes meanwhile, and each write gets its turn.
      let stop = false;
      const batches = (async () => {
        while (!stop) await worker.insert(rows(400, 'dev-contended'));
      })();
      for (let day = 1; day <= 10; day++) {
        await store.addUsage([{ deviceId: 'dev-contended', organizationId: 'org-w', day, readings: 1, bytes: 1 }]);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      stop = true;
      await batches;
      assert.deepEqual(await store.usage('dev-contended', 10), { readings: 1, bytes: 1 });
    } finally {
      await worker.stop();
    }
  });

  it("takes turns with the platform connection's transactions: a transaction waits for a batch as a promise, the event loop running meanwhile", async () => {
    const turns = handle.writeTurns!;
    const worker = await SqliteBatchWorker.start(handle.file!, log, turns);
    try {
      const order: string[] = [];
      // A batch long enough to be committing still when the timer below is due (tens of ms at least).
      const batch = worker.insert(rows(20_000, 'dev-turns')).then(() => order.push('batch committed'));
      assert.equal(turns.waiting, 0, 'the batch holds the turn at once');
      const transaction = handle.db.transaction().execute(async (trx) => {
        order.push('transaction');
        await trx.deleteFrom('telemetry_usage').where('device_id', '=', 'dev-turns').execute();
      });
      setTimeout(() => order.push('timer'), 0);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(turns.waiting, 1, 'the transaction waits for its turn');
      await Promise.all([batch, transaction]);
      // In SQLite's busy handler instead, BEGIN would have held the event loop until the batch
      // committed: the transaction first, the timer after.
      assert.deepEqual(order, ['timer', 'batch committed', 'transaction']);
      assert.equal(turns.waiting, 0);

      // A transaction that fails still passes the turn on.
      await assert.rejects(
        handle.db.transaction().execute(async () => {
          throw new Error('planted');
        }),
        /planted/,
      );
      await worker.insert(rows(3, 'dev-turns'));
      assert.equal(await store.count('dev-turns'), 20_003);
    } finally {
      await worker.stop();
    }
  });

  it('fails clearly when the worker cannot open the database, and never hangs', async () => {
    await assert.rejects(SqliteBatchWorker.start(join(dir, 'missing', 'nowhere.db'), log), /could not open the database/);
  });

  it('commits the batches in flight when stopped, refuses later ones, and leaves no thread behind', async () => {
    const worker = await SqliteBatchWorker.start(handle.file!, log);
    const before = await store.count();
    const inFlight = Array.from({ length: 10 }, () => worker.insert(rows(100)));
    const thread = await threadOf(worker);
    let exited = false;
    thread.once('exit', () => (exited = true));
    await worker.stop();
    await Promise.all(inFlight);
    assert.equal(await store.count(), before + 1000);
    assert.ok(exited, 'the thread has exited');
    await assert.rejects(worker.insert(rows(1)), (error: Error) => isStorageUnavailable(error));
    await worker.stop(); // twice is harmless
  });
});
