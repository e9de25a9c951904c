import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAY, MINUTE } from '../clock.js';
import { outboxDir } from '../accounts/mailer.js';
import type { SessionRow } from '../accounts/store.js';
import { loadConfig } from '../ops/config.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf } from '../testing/devices.js';
import { startTestPlatform } from '../testing/server.js';

for (const engine of ENGINES) {
  describe(`retention of sessions and outbox mail [${engine.engine}]`, { skip: engine.skip }, () => {
    it('deletes sessions ended more than retention.sessionsDays ago and outbox mail older than outboxDays, keeps the rest and the audit log', async () => {
      const t = await startTestPlatform(engine, { retention: { sessionsDays: 10, outboxDays: 5 } });
      try {
        // The run at start is over (and found nothing) before the rows below exist.
        assert.deepEqual(await t.server.runRetention(), { sessions: 0, outboxMails: 0 });
        const { store } = t.platform.accounts;
        const org = await organizationIdOf(t.platform, t.org);
        const owner = (await store.userByEmail(org, t.owner.email))!;
        const now = t.clock.now();
        const idle = t.config.sessions.idleTimeoutMinutes * MINUTE;
        const session = (id: string, fields: Partial<SessionRow>): SessionRow => ({
          id,
          token_hash: `hash-${id}`,
          user_id: owner.id,
          organization_id: org,
          transport: 'bearer',
          scope: 'full',
          created_at: now - 20 * DAY,
          last_seen_at: now - MINUTE,
          expires_at: now + DAY,
          step_up_at: null,
          source_ip: '127.0.0.1',
          user_agent: 'test',
          revoked_at: null,
          ...fields,
        });
        const rows = [
          session('live', {}),
          session('revoked-old', { revoked_at: now - 11 * DAY }),
          session('revoked-recent', { revoked_at: now - 9 * DAY }),
          session('expired-old', { expires_at: now - 11 * DAY, last_seen_at: now - 11 * DAY - MINUTE }),
          session('expired-recent', { expires_at: now - 9 * DAY, last_seen_at: now - 9 * DAY - MINUTE }),
          session('idle-old', { last_seen_at: now - 11 * DAY - idle }),
          session('idle-recent', { last_seen_at: now - 9 * DAY - idle }),
        ];
        for (const row of rows) await store.insertSession(row);

        const dir = outboxDir(t.config.dataDir);
        mkdirSync(dir, { recursive: true });
        const mail = (name: string, ageDays: number) => {
          const file = join(dir, `${name}.json`);
          writeFileSync(file, '{}');
          const at = (now - ageDays * DAY) / 1000;
          utimesSync(file, at, at);
          return file;
        };
        const oldMail = mail('old', 6);
        const recentMail = mail('recent', 4);
        const auditBefore = (await t.platform.audit.verify()).entries;

        const result = await t.server.runRetention();
        assert.equal(result.sessions, 3);
        assert.equal(result.outboxMails, 1);
        const left = await Promise.all(rows.map(async (r) => [r.id, (await store.sessionByTokenHash(r.token_hash)) !== undefined]));
        assert.deepEqual(Object.fromEntries(left), {
          live: true,
          'revoked-old': false,
          'revoked-recent': true,
          'expired-old': false,
          'expired-recent': true,
          'idle-old': false,
          'idle-recent': true,
        });
        assert.equal(existsSync(oldMail), false);
        assert.equal(existsSync(recentMail), true);
        assert.ok(readdirSync(dir).includes('recent.json'));

        // Audited; the audit log lost nothing and still verifies.
        const { entries } = await t.platform.audit.query({ action: 'retention.pruned', limit: 5 });
        assert.equal(entries.length, 1);
        assert.deepEqual(entries[0]!.details, { sessions: 3, outboxMails: 1, sessionsDays: 10, outboxDays: 5 });
        const verified = await t.platform.audit.verify();
        assert.ok(verified.ok);
        assert.equal(verified.entries, auditBefore + 1);

        // Nothing left to delete: a second run changes nothing and records nothing.
        assert.deepEqual(await t.server.runRetention(), { sessions: 0, outboxMails: 0 });
        assert.equal((await t.platform.audit.query({ action: 'retention.pruned', limit: 5 })).entries.length, 1);
      } finally {
        await t.close();
      }
    });
  });
}

describe('retention configuration', () => {
  it('refuses a retention of zero days or a key that does not exist (audit retention cannot be configured)', () => {
    for (const retention of [{ sessionsDays: 0 }, { outboxDays: -1 }, { auditDays: 30 }]) {
      assert.throws(() => loadConfig({ dataDir: '/nonexistent', env: {}, overrides: { retention } as never }), /retention/);
    }
    assert.deepEqual(loadConfig({ dataDir: '/nonexistent', env: {} }).retention, { sessionsDays: 30, outboxDays: 30 });
  });
});
