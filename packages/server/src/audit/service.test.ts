import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../clock.js';
import { SecretBox } from '../keys/master-key.js';
import { SigningKeys } from '../keys/signing-keys.js';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { AuditService } from './service.js';
import { AuditStore } from './store.js';

async function withLog(
  engine: (typeof ENGINES)[number],
  entries: number,
  fn: (audit: AuditService, handle: TestDatabase, clock: ManualClock) => Promise<void>,
): Promise<void> {
  const handle = await engine.create();
  const clock = new ManualClock();
  const audit = new AuditService(
    new AuditStore(handle.db, handle.engine),
    new SigningKeys(handle.db, new SecretBox(randomBytes(32)), clock),
    clock,
    5,
  );
  try {
    for (let i = 1; i <= entries; i++) {
      clock.advance(1000);
      await audit.record({
        organizationId: i % 2 ? 'org-a' : 'org-b',
        actor: { type: 'user', id: `user-${i}` },
        action: i % 3 ? 'user.login' : 'user.role_changed',
        target: { type: 'user', id: `target-${i}` },
        sourceIp: '192.0.2.1',
        details: { n: i },
      });
    }
    await fn(audit, handle, clock);
  } finally {
    await handle.close();
  }
}

for (const engine of ENGINES) {
  describe(`audit log [${engine.engine}]`, { skip: engine.skip }, () => {
    it('verifies an untouched chain with its signed checkpoints', async () => {
      await withLog(engine, 12, async (audit) => {
        const report = await audit.verify();
        assert.equal(report.ok, true, JSON.stringify(report.problems));
        assert.equal(report.entries, 12);
        assert.equal(report.checkpoints, 2, 'a checkpoint every 5 entries');
      });
    });

    it("keeps personal fields beside the chain: readers see them, erasing a user's leaves a chain that verifies", async () => {
      await withLog(engine, 3, async (audit, { db }) => {
        await audit.record({
          organizationId: 'org-a',
          actor: { type: 'user', id: 'casey' },
          action: 'user.signup',
          details: { plan: 'free' },
          personal: { subject: 'casey', fields: { email: 'casey@example.com' } },
        });
        const read = async () => (await audit.query({ action: 'user.signup' })).entries[0]!.details;
        assert.deepEqual(await read(), { plan: 'free', email: 'casey@example.com' });
        const stored = await db.selectFrom('audit_log').select('details').where('action', '=', 'user.signup').executeTakeFirstOrThrow();
        assert.ok(!stored.details.includes('casey@example.com'), 'the chained row holds no address');
        assert.equal(await audit.erasePersonalDataOf('casey'), 1);
        assert.deepEqual(await read(), { plan: 'free' });
        const report = await audit.verify();
        assert.equal(report.ok, true, JSON.stringify(report.problems));
        assert.equal(report.entries, 4);
      });
    });

    it('detects an edited entry', async () => {
      await withLog(engine, 8, async (audit, { db }) => {
        await db.updateTable('audit_log').set({ outcome: 'failure' }).where('seq', '=', 3).execute();
        const report = await audit.verify();
        assert.equal(report.ok, false);
        assert.deepEqual(
          report.problems.map((p) => [p.seq, p.kind]),
          [[3, 'hash_mismatch']],
        );
      });
    });

    it('detects an edit that recomputes the entry hash through the broken link and checkpoint', async () => {
      await withLog(engine, 8, async (audit, { db }) => {
        const { entryHash } = await import('./chain.js');
        const row = await db.selectFrom('audit_log').selectAll().where('seq', '=', 5).executeTakeFirstOrThrow();
        const forged = { ...row, actor_id: 'someone-else' };
        await db
          .updateTable('audit_log')
          .set({ actor_id: forged.actor_id, hash: entryHash(forged) })
          .where('seq', '=', 5)
          .execute();
        const kinds = (await audit.verify()).problems.map((p) => `${p.seq}:${p.kind}`);
        assert.ok(kinds.includes('6:broken_link'), kinds.join());
        assert.ok(kinds.includes('5:checkpoint_mismatch'), kinds.join());
      });
    });

    it('detects a deleted entry', async () => {
      await withLog(engine, 8, async (audit, { db }) => {
        await db.deleteFrom('audit_log').where('seq', '=', 4).execute();
        const kinds = (await audit.verify()).problems.map((p) => `${p.seq}:${p.kind}`);
        assert.deepEqual(kinds, ['5:gap', '5:broken_link']);
      });
    });

    it('detects an inserted entry', async () => {
      await withLog(engine, 4, async (audit, { db }) => {
        const rows = await db.selectFrom('audit_log').selectAll().orderBy('seq', 'desc').execute();
        for (const row of rows)
          await db
            .updateTable('audit_log')
            .set({ seq: row.seq + 100 })
            .where('seq', '=', row.seq)
            .execute();
        const first = rows[rows.length - 1]!;
        await db
          .insertInto('audit_log')
          .values({ ...first, seq: 101, action: 'fake.insert' })
          .execute()
          .catch(() => undefined);
        await db.updateTable('audit_log').set({ seq: 1 }).where('seq', '=', 101).execute();
        const report = await audit.verify();
        assert.equal(report.ok, false);
        assert.ok(report.problems.some((p) => p.kind === 'gap'));
      });
    });

    it('detects reordered entries', async () => {
      await withLog(engine, 6, async (audit, { db }) => {
        await db.updateTable('audit_log').set({ seq: 1000 }).where('seq', '=', 2).execute();
        await db.updateTable('audit_log').set({ seq: 2 }).where('seq', '=', 3).execute();
        await db.updateTable('audit_log').set({ seq: 3 }).where('seq', '=', 1000).execute();
        const report = await audit.verify();
        assert.ok(report.problems.some((p) => p.seq === 2 && p.kind === 'broken_link'));
        assert.ok(report.problems.some((p) => p.seq === 2 && p.kind === 'hash_mismatch'));
      });
    });

    it('detects truncation of entries covered by a signed checkpoint', async () => {
      await withLog(engine, 10, async (audit, { db }) => {
        await db.deleteFrom('audit_log').where('seq', '>', 7).execute();
        const kinds = (await audit.verify()).problems.map((p) => `${p.seq}:${p.kind}`);
        assert.deepEqual(kinds, ['10:checkpoint_mismatch']);
      });
    });

    it('signs its own uncovered entries on request, and nothing when it appended none', async () => {
      await withLog(engine, 7, async (audit, handle, clock) => {
        assert.equal(await audit.checkpointOwnEntries(), 7, 'entries 6 and 7 were not covered');
        const reader = new AuditService(
          new AuditStore(handle.db, handle.engine),
          new SigningKeys(handle.db, new SecretBox(randomBytes(32)), clock),
          clock,
          5,
        );
        assert.equal(await reader.checkpointOwnEntries(), null, 'a process that only read signs nothing');
        assert.equal(await audit.checkpointOwnEntries(), null, 'nothing new since');
        await handle.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
        assert.deepEqual(
          (await audit.verify()).problems.map((p) => [p.seq, p.kind]),
          [[7, 'checkpoint_mismatch']],
        );
      });
    });

    it('detects a forged checkpoint signature', async () => {
      await withLog(engine, 5, async (audit, { db }) => {
        await db
          .updateTable('audit_checkpoints')
          .set({ signature: Buffer.alloc(64, 1).toString('base64') })
          .execute();
        const kinds = (await audit.verify()).problems.map((p) => p.kind);
        assert.deepEqual(kinds, ['bad_checkpoint']);
      });
    });

    it('detects deleted checkpoints', async () => {
      await withLog(engine, 12, async (audit, { db }) => {
        await db.deleteFrom('audit_checkpoints').execute();
        const kinds = (await audit.verify()).problems.map((p) => `${p.seq}:${p.kind}`);
        assert.deepEqual(kinds, ['5:missing_checkpoint', '10:missing_checkpoint']);
      });
    });

    it('refuses a whole chain rewritten and re-signed with a key planted without the master key', async () => {
      await withLog(engine, 10, async (audit, { db }) => {
        const { entryHash, checkpointPayload } = await import('./chain.js');
        const { generateKeyPairSync, sign } = await import('node:crypto');
        const rows = await db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
        let prev = rows[0]!.prev_hash;
        for (const row of rows) {
          const forged = { ...row, prev_hash: prev, action: row.seq === 3 ? 'nothing.happened' : row.action };
          const hash = entryHash(forged);
          await db.updateTable('audit_log').set({ action: forged.action, prev_hash: prev, hash }).where('seq', '=', row.seq).execute();
          prev = hash;
        }
        const { publicKey, privateKey } = generateKeyPairSync('ed25519');
        await db
          .insertInto('signing_keys')
          .values({
            id: 'planted',
            purpose: 'audit-checkpoint',
            algorithm: 'ed25519',
            public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
            private_key: 'v1.planted.x.y',
            created_at: 0,
            retired_at: null,
          })
          .execute();
        for (const cp of await db.selectFrom('audit_checkpoints').selectAll().execute()) {
          const entry = await db.selectFrom('audit_log').select('hash').where('seq', '=', cp.seq).executeTakeFirstOrThrow();
          const forged = { seq: cp.seq, hash: entry.hash, ts: cp.ts, key_id: 'planted' };
          await db
            .updateTable('audit_checkpoints')
            .set({ hash: entry.hash, key_id: 'planted', signature: sign(null, checkpointPayload(forged), privateKey).toString('base64') })
            .where('seq', '=', cp.seq)
            .execute();
        }
        const kinds = (await audit.verify()).problems.map((p) => `${p.seq}:${p.kind}`);
        assert.deepEqual(kinds, ['5:bad_checkpoint', '10:bad_checkpoint']);
      });
    });

    it('pages through filtered entries newest first with a cursor', async () => {
      await withLog(engine, 12, async (audit) => {
        const first = await audit.query({ organizationId: 'org-a', limit: 4 });
        assert.deepEqual(
          first.entries.map((e) => e.seq),
          [11, 9, 7, 5],
        );
        const second = await audit.query({ organizationId: 'org-a', limit: 4, before: first.nextCursor! });
        assert.deepEqual(
          second.entries.map((e) => e.seq),
          [3, 1],
        );
        assert.equal(second.nextCursor, null);
        const roles = await audit.query({ action: 'user.role_changed' });
        assert.deepEqual(
          roles.entries.map((e) => e.seq),
          [12, 9, 6, 3],
        );
      });
    });

    it('exports every entry of an organization as JSON lines, oldest first', async () => {
      await withLog(engine, 6, async (audit) => {
        const lines: string[] = [];
        for await (const line of audit.export('org-b')) lines.push(line);
        const parsed = lines.map((l) => JSON.parse(l) as { seq: number; organizationId: string });
        assert.deepEqual(
          parsed.map((e) => e.seq),
          [2, 4, 6],
        );
        assert.ok(parsed.every((e) => e.organizationId === 'org-b'));
      });
    });

    it('serializes concurrent appends into one unbroken chain', async () => {
      await withLog(engine, 0, async (audit) => {
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            audit.record({ organizationId: null, actor: { type: 'system', id: null }, action: 'test.concurrent', details: { i } }),
          ),
        );
        const report = await audit.verify();
        assert.equal(report.ok, true, JSON.stringify(report.problems));
        assert.equal(report.entries, 40);
      });
    });
  });
}
