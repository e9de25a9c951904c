import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { SQLITE_CHUNK_SIZES, sqliteChunks, TelemetryStore, type PresenceSession, type TelemetryRow } from './store.js';

describe('SQLite insert statement sizes', () => {
  it('splits any batch into the fixed statement sizes only, largest first, covering every row', () => {
    for (let n = 0; n <= 300; n++) {
      const chunks = sqliteChunks(n);
      assert.equal(
        chunks.reduce((a, b) => a + b, 0),
        n,
        `${n} rows`,
      );
      assert.ok(
        chunks.every((c) => (SQLITE_CHUNK_SIZES as readonly number[]).includes(c)),
        `${n}: ${chunks.join(',')}`,
      );
      assert.deepEqual(
        chunks,
        [...chunks].sort((a, b) => b - a),
        `${n}: largest first`,
      );
    }
    assert.deepEqual(sqliteChunks(39), [16, 16, 4, 1, 1, 1]);
  });
});

for (const engine of ENGINES) {
  describe(`telemetry store [${engine.engine}]`, { skip: engine.skip }, () => {
    let database: TestDatabase;
    let store: TelemetryStore;
    before(async () => {
      database = await engine.create();
      store = new TelemetryStore(database.db, database.engine, database.copyIn);
    });
    after(() => database.close());

    describe('batch insert', () => {
      it('stores every row of batches of any size exactly once, with its own values, in order', async () => {
        const written: TelemetryRow[] = [];
        let n = 0;
        for (const size of [1, 3, 4, 16, 21, 37, 250]) {
          const rows = Array.from({ length: size }, () => {
            n++;
            return {
              organization_id: `org-${n % 3}`,
              device_id: `dev-${n % 7}`,
              ts: 1_764_000_000_000 + n,
              received_at: 1_764_000_001_000 + n,
              data: JSON.stringify({ n, s: `v${n}` }),
            };
          });
          await store.insertBatch(rows);
          written.push(...rows);
        }
        await store.insertBatch([]);
        const stored = await database.db
          .selectFrom('telemetry_readings')
          .select(['organization_id', 'device_id', 'ts', 'received_at', 'data'])
          .orderBy('seq')
          .execute();
        assert.deepEqual(
          stored.map((r) => ({ ...r, ts: Number(r.ts), received_at: Number(r.received_at) })),
          written,
        );
      });

      it('stores text that is special to the bulk path exactly as given: backslashes, tabs, newlines, \\N, \\., quotes, non-ASCII', async () => {
        const awkward = ['a\\b', 'tab\there', 'line\nbreak', 'cr\rlf', '\\N', '\\.', '"quoted"', 'ünïcødé 温度 \u2028 🌡', ''];
        const rows: TelemetryRow[] = awkward.map((s, i) => ({
          organization_id: `org\\${i}\t`,
          device_id: `dev-awkward\n${i}`,
          ts: 1_764_100_000_000 + i,
          received_at: 1_764_100_000_000,
          data: i % 2 === 0 ? JSON.stringify({ s }) : `{"s":"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"}\\`,
        }));
        await store.insertBatch(rows);
        const stored = await database.db
          .selectFrom('telemetry_readings')
          .select(['organization_id', 'device_id', 'data'])
          .where('ts', '>=', 1_764_100_000_000)
          .orderBy('seq')
          .execute();
        assert.deepEqual(
          stored,
          rows.map((r) => ({ organization_id: r.organization_id, device_id: r.device_id, data: r.data })),
        );
      });

      it('writes nothing of a batch in which one row is refused', async () => {
        const before = await store.count();
        const rows = Array.from({ length: 20 }, (_, i) => ({
          organization_id: 'org-x',
          device_id: 'dev-x',
          ts: 1_764_000_000_000 + i,
          received_at: 1_764_000_000_000,
          data: '{}',
        }));
        (rows[18] as { data: unknown }).data = null; // NOT NULL: row 19 (in the second statement, of 4 rows) fails
        await assert.rejects(store.insertBatch(rows));
        assert.equal(await store.count(), before);
      });
    });

    describe('device presence across sessions', () => {
      let devices = 0;
      const session = (deviceId: string, connectedSince: number, nodeId = 'node-1'): PresenceSession => ({
        deviceId,
        organizationId: 'org-p',
        nodeId,
        remoteAddress: '192.0.2.7',
        protocol: 'mqtts',
        connectedSince,
      });
      const recorded = async (deviceId: string) => {
        const row = await store.presence(deviceId);
        return row ? { since: row.connected_since === null ? null : Number(row.connected_since), node: row.node_id } : undefined;
      };
      const newDevice = () => `presence-device-${++devices}`;

      it('records a session, and the device offline when that session ends', async () => {
        const id = newDevice();
        await store.recordConnected(session(id, 1000), 1000);
        assert.deepEqual(await recorded(id), { since: 1000, node: 'node-1' });
        await store.recordDisconnected(session(id, 1000), 1500);
        assert.deepEqual(await recorded(id), { since: null, node: 'node-1' });
        await store.recordConnected(session(id, 2000), 2000);
        assert.deepEqual(await recorded(id), { since: 2000, node: 'node-1' });
      });

      it('a quick reconnect: the old session’s end, landing after the new session, leaves the device online', async () => {
        const id = newDevice();
        await store.recordConnected(session(id, 1000), 1000);
        await store.recordConnected(session(id, 1200, 'node-2'), 1200);
        await store.recordDisconnected(session(id, 1000), 1250);
        assert.deepEqual(await recorded(id), { since: 1200, node: 'node-2' });
      });

      it('an older session’s connect, landing after a newer one, does not replace it', async () => {
        const id = newDevice();
        await store.recordConnected(session(id, 2000, 'node-2'), 2000);
        await store.recordConnected(session(id, 1000), 2001);
        assert.deepEqual(await recorded(id), { since: 2000, node: 'node-2' });
        // Nor does that older session’s end take the device offline.
        await store.recordDisconnected(session(id, 1000), 2002);
        assert.deepEqual(await recorded(id), { since: 2000, node: 'node-2' });
      });

      it('an end recorded by another node for the same start time does not take the device offline', async () => {
        const id = newDevice();
        await store.recordConnected(session(id, 3000, 'node-1'), 3000);
        await store.recordDisconnected(session(id, 3000, 'node-2'), 3001);
        assert.deepEqual(await recorded(id), { since: 3000, node: 'node-1' });
      });

      it('a stopping node ends its sessions together, each only where it is still the one recorded', async () => {
        const mine = Array.from({ length: 1100 }, () => newDevice()); // more than one statement's worth
        for (const id of mine) await store.recordConnected(session(id, 4000), 4000);
        const elsewhere = newDevice(); // since reconnected to another node
        await store.recordConnected(session(elsewhere, 4000), 4000);
        await store.recordConnected(session(elsewhere, 4100, 'node-2'), 4100);
        const reconnected = newDevice(); // a newer session on this node than the one ending
        await store.recordConnected(session(reconnected, 4200), 4200);
        const ending = [...mine, elsewhere, reconnected].map((deviceId) => ({ deviceId, connectedSince: 4000 }));
        await store.recordSessionsEnded('node-1', ending, 5000);
        for (const id of [mine[0]!, mine[999]!, mine[1099]!]) assert.deepEqual(await recorded(id), { since: null, node: 'node-1' });
        const stillOnline = await database.db
          .selectFrom('device_presence')
          .select('device_id')
          .where('device_id', 'in', mine)
          .where('connected_since', 'is not', null)
          .execute();
        assert.equal(stillOnline.length, 0);
        assert.deepEqual(await recorded(elsewhere), { since: 4100, node: 'node-2' });
        assert.deepEqual(await recorded(reconnected), { since: 4200, node: 'node-1' });
      });
    });
  });
}
