import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../accounts/roles.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { TelemetryWriter } from './ingest.js';
import type { TelemetryRow } from './store.js';

const DAY = 86_400_000;
const BATCH = 100;

for (const engine of ENGINES) {
  describe(`telemetry retention [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let tokenB: string;

    before(async () => {
      t = await startTestPlatform(engine, {
        auth: { loginRateLimitPerMinute: 10_000 },
        telemetry: { retentionDays: 30, pruneIntervalMinutes: 60, pruneBatchRows: BATCH },
      });
      token = (await ownerSession(t)).token;
      await t.platform.accounts.service.createOrganization({ slug: 'org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', 'org-b'));
    });
    after(() => t?.close());

    it('sets a product’s retention through the product API: validated, audited, and not across organizations', async () => {
      const client = t.client();
      const created = await client.post('/api/v1/products', { name: 'Kept a year', telemetryRetentionDays: 365 }, { token });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.telemetryRetentionDays, 365);
      const id = created.body.id as string;
      const changed = await client.patch(`/api/v1/products/${id}`, { telemetryRetentionDays: 7 }, { token });
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.body.telemetryRetentionDays, 7);
      const reset = await client.patch(`/api/v1/products/${id}`, { telemetryRetentionDays: null }, { token });
      assert.equal(reset.body.telemetryRetentionDays, null);
      for (const bad of [
        { telemetryRetentionDays: 0 },
        { telemetryRetentionDays: 3651 },
        { telemetryRetentionDays: 1.5 },
        { name: 'renamed' },
      ]) {
        assert.equal((await client.patch(`/api/v1/products/${id}`, bad, { token })).status, 400, JSON.stringify(bad));
      }
      assert.equal(
        (await client.patch(`/api/v1/products/${id}`, { telemetryRetentionDays: 1 }, { token: tokenB })).status,
        404,
        'another organization’s product is not found',
      );
      assert.equal(
        (await client.get('/api/v1/products', { token })).body.products.find((p: { id: string }) => p.id === id).telemetryRetentionDays,
        null,
        'unchanged by the refused attempts',
      );
      const org = await organizationIdOf(t.platform, t.org);
      const entries = (await t.platform.audit.query({ organizationId: org, targetId: id })).entries.reverse();
      assert.deepEqual(
        entries.map((e) => [e.action, e.details.telemetryRetentionDays]),
        [
          ['product.created', undefined],
          ['product.updated', { from: 365, to: 7 }],
          ['product.updated', { from: 7, to: null }],
        ],
      );
    });

    it('deletes only readings older than their product’s retention (or the default), in batches; a dry run only counts', async () => {
      const org = await organizationIdOf(t.platform, t.org);
      const orgB = await organizationIdOf(t.platform, 'org-b');
      const actor = cliActor(org, 'test');
      const actorB = cliActor(orgB, 'test');
      const week = await t.platform.devices.service.createProduct(actor, { name: 'Week', telemetryRetentionDays: 7 });
      const standard = await t.platform.devices.service.createProduct(actor, { name: 'Standard' });
      const long = await t.platform.devices.service.createProduct(actor, { name: 'Long', telemetryRetentionDays: 365 });
      const other = await t.platform.devices.service.createProduct(actorB, { name: 'Other org' });
      const register = async (a: typeof actor, productId: string, serial: string) =>
        (await t.platform.devices.service.register(a, { serial, productId })).id;
      const devices = {
        w1: { id: await register(actor, week.id, 'W-1'), org, days: 7 },
        w2: { id: await register(actor, week.id, 'W-2'), org, days: 7 },
        s1: { id: await register(actor, standard.id, 'S-1'), org, days: 30 },
        l1: { id: await register(actor, long.id, 'L-1'), org, days: 365 },
        o1: { id: await register(actorB, other.id, 'O-1'), org: orgB, days: 30 },
      };

      const now = t.clock.now();
      const ages = [0.5, 6.9, 7.1, 29.9, 30.1, 364, 366, 1000];
      const rows: TelemetryRow[] = [];
      const kept = new Map<string, number[]>();
      let expired = 0;
      const expiredOf = new Map<string, number>();
      for (const [name, d] of Object.entries(devices)) {
        // w1 carries a backlog of 250 expired readings: three full batches of 100 and one partial.
        const deviceAges = name === 'w1' ? [...ages, ...Array.from({ length: 250 }, (_, i) => 10 + i / 1000)] : ages;
        for (const age of deviceAges) {
          const ts = Math.round(now - age * DAY);
          rows.push({ organization_id: d.org, device_id: d.id, ts, received_at: now, data: JSON.stringify({ age }) });
          if (age < d.days) kept.set(d.id, [...(kept.get(d.id) ?? []), ts]);
          else expired++;
        }
        expiredOf.set(d.id, deviceAges.filter((a) => a >= d.days).length);
      }
      await new TelemetryWriter(t.platform.telemetry.store).write(rows);
      const total = await t.platform.telemetry.store.count();

      const dry = await t.platform.telemetry.retention.run({ dryRun: true });
      assert.equal(dry.rows, expired);
      assert.equal(dry.batches, 0);
      assert.equal(await t.platform.telemetry.store.count(), total, 'a dry run deletes nothing');

      const report = await t.platform.telemetry.retention.run();
      assert.equal(report.rows, expired);
      assert.equal(report.complete, true);
      const byProduct = new Map(report.products.map((p) => [p.productId, p]));
      assert.deepEqual(
        [week.id, standard.id, long.id, other.id].map((id) => [
          byProduct.get(id)!.rows,
          byProduct.get(id)!.retentionDays,
          byProduct.get(id)!.usesDefault,
        ]),
        [
          [expiredOf.get(devices.w1.id)! + expiredOf.get(devices.w2.id)!, 7, false],
          [expiredOf.get(devices.s1.id), 30, true],
          [expiredOf.get(devices.l1.id), 365, false],
          [expiredOf.get(devices.o1.id), 30, true],
        ],
      );
      // Week's two devices go together, 100 rows a statement until one deletes fewer; the others in one statement each.
      const weekExpired = expiredOf.get(devices.w1.id)! + expiredOf.get(devices.w2.id)!;
      // Products without devices cost no statement.
      assert.equal(weekExpired, 262);
      assert.equal(report.batches, Math.floor(weekExpired / BATCH) + 1 + 3);

      for (const d of Object.values(devices)) {
        const left = (await t.platform.telemetry.store.range(d.id, 0, Number.MAX_SAFE_INTEGER, 10_000)).map((r) => r.ts);
        assert.deepEqual(
          left,
          [...kept.get(d.id)!].sort((a, b) => a - b),
        );
      }
      const again = await t.platform.telemetry.retention.run();
      assert.equal(again.rows, 0, 'nothing more to delete');
    });
  });
}
