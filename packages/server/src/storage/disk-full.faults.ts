/**
 * A full disk under a SQLite node's data directory (issue 17, failure scenarios): the data
 * directory is a small tmpfs (mount(2) needs root; skipped with the reason otherwise), filled to
 * the last page while the node serves. The safe outcome: writes refused with 503
 * `storage.unavailable`, reads still answered, QoS 1 telemetry not acknowledged, nothing
 * half-written (the database passes its integrity check, a refused write left no row), and all
 * back once space is freed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { sql } from 'kysely';
import { openDatabase } from './database.js';
import { migrateToLatest } from './migrate.js';
import type { EngineUnderTest } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { eventually, settle } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const mountProbe = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-mount-probe-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (result.status === 0) spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
  return result.status === 0 ? false : `cannot mount a tmpfs here (${(result.stderr || 'mount failed').trim()}): run as root`;
})();

/** SQLite in a data directory on a 48 MiB tmpfs. */
const sqliteOnTmpfs: EngineUnderTest = {
  engine: 'sqlite',
  skip: mountProbe,
  async create() {
    const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-full-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tmpfs', dataDir], { encoding: 'utf8' });
    if (mounted.status !== 0) throw new Error(`mount: ${mounted.stderr}`);
    const handle = openDatabase({ url: 'sqlite', dataDir });
    await migrateToLatest(handle);
    return {
      ...handle,
      url: 'sqlite',
      dataDir,
      close: async () => {
        await handle.close();
        spawnSync('umount', ['--lazy', dataDir]);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

/** Writes `dir/filler` until the file system has no block left. */
function fill(dir: string): void {
  const fd = openSync(join(dir, 'filler'), 'a');
  const block = Buffer.alloc(statfsSync(dir).bsize);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

describe('a full disk under a SQLite node', { skip: mountProbe }, () => {
  let t: TestPlatform;
  let device: TestDevice;
  let token: string;
  let client: MqttClient;

  before(async () => {
    t = await startTestPlatform(sqliteOnTmpfs, { mqtt: { port: 0 } });
    const org = await organizationIdOf(t.platform, t.org);
    device = await provisionTestDevice(t.platform, org, await testProduct(t.platform, org), 'FULL-1');
    ({ token } = await ownerSession(t));
  });
  after(async () => {
    client?.end(true);
    rmSync(join(t.database.dataDir, 'filler'), { force: true });
    await t?.close();
  });

  it('refuses writes with 503 storage.unavailable and holds QoS 1 acknowledgements, half-writes nothing, and recovers once space is freed', async () => {
    client = mqtt.connect(`mqtts://localhost:${t.server.mqtt!.port}`, {
      clientId: device.id,
      ca: t.ca,
      key: device.key,
      cert: device.cert,
      reconnectPeriod: 250,
      reconnectOnConnackError: true,
    });
    await new Promise((resolve) => client.once('connect', resolve));
    await client.publishAsync(`d/${device.id}/telemetry`, JSON.stringify({ values: { n: 1 } }), { qos: 1 });
    const api = t.client();

    // The WAL emptied first, so that the next write needs a new page of it on the full disk.
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(t.platform.db);
    fill(t.database.dataDir);
    let refused: { status: number; body: any } | null = null;
    let refusedName = '';
    for (let i = 0; i < 50 && !refused; i++) {
      refusedName = `full-${i}`;
      const made = await api.post('/api/v1/products', { name: refusedName }, { token });
      if (made.status !== 201) refused = made;
    }
    assert.ok(refused, 'a write was refused on the full disk');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'storage.unavailable');
    assert.equal((await api.get(`/api/v1/devices/${device.id}`, { token })).status, 200, 'reads are still answered');

    let acked = false;
    const held = client
      .publishAsync(`d/${device.id}/telemetry`, JSON.stringify({ values: { n: 2 } }), { qos: 1 })
      .then(() => (acked = true));
    await settle(1500);
    assert.equal(acked, false, 'no PUBACK while the disk is full');
    // SQLITE_FULL, from the telemetry writer's thread, read as storage unavailable: the session ended for the device to send again.
    assert.ok(t.server.mqtt!.stats.storageDisconnects > 0, 'the telemetry write failed as storage unavailable');

    rmSync(join(t.database.dataDir, 'filler'));
    await held;
    await eventually(
      async () => (await api.post('/api/v1/products', { name: 'after-full' }, { token })).status === 201,
      10_000,
      'writes again',
    );
    const products = (await api.get('/api/v1/products', { token })).body.products as { name: string }[];
    assert.equal(products.filter((p) => p.name === refusedName).length, 0, 'the refused product was not half-written');
    const integrity = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(t.platform.db);
    assert.deepEqual(integrity.rows, [{ integrity_check: 'ok' }]);
    const rows = await t.platform.telemetry.store.range(device.id, 0, Number.MAX_SAFE_INTEGER, 100);
    assert.deepEqual([...new Set(rows.map((r) => (JSON.parse(r.data) as { n: number }).n))].sort(), [1, 2]);
  });
});
