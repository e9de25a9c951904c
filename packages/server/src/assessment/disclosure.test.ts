/**
 * Vulnerability disclosure on a real node, on both engines: security.txt and its fields, the
 * public report intake (stored, acknowledged by mail, audited with the reporter's address beside
 * the chain, not in it), an unknown organization answered alike with nothing stored, bounds on
 * the body, the per-address rate limit, the operators' triage and who may do it, the overdue
 * finding, and the public support list that shows only a product's name and end of support.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../accounts/roles.js';
import { DisclosureService } from './disclosure.js';
import { DisclosureStore } from './disclosure-store.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { mailsDuring } from '../testing/mail.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const DAY = 86_400_000;
const REPORTS_PER_HOUR = 20;

for (const engine of ENGINES) {
  describe(`vulnerability disclosure [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let orgId: string;
    let owner: string;
    /** Intake requests sent so far from this address: the rate limit counts every one. */
    let sent = 0;

    before(async () => {
      t = await startTestPlatform(engine, {
        assessment: { intervalMinutes: 0 },
        http: { port: 0, publicUrl: 'https://iot.brand.example' },
        disclosure: { policy: 'https://brand.example/security-policy', reportsPerHour: REPORTS_PER_HOUR, preferredLanguages: 'en, de' },
      });
      orgId = await organizationIdOf(t.platform, t.org);
      owner = (await ownerSession(t)).token;
    });
    after(async () => {
      await t?.close();
    });

    function report(body: unknown, raw?: string) {
      sent += 1;
      return t
        .client()
        .post('/api/v1/disclosures', body, raw === undefined ? {} : { raw, headers: { 'content-type': 'application/json' } });
    }

    it('serves security.txt as text/plain with Contact, Expires, Preferred-Languages, Canonical and Policy', async () => {
      const answer = await t.client().get('/.well-known/security.txt');
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers['content-type']), /^text\/plain; charset=utf-8/);
      const fields = new Map(
        answer.text
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)] as const),
      );
      assert.equal(fields.get('Contact'), 'https://iot.brand.example/api/v1/disclosures');
      assert.equal(fields.get('Canonical'), 'https://iot.brand.example/.well-known/security.txt');
      assert.equal(fields.get('Preferred-Languages'), 'en, de');
      assert.equal(fields.get('Policy'), 'https://brand.example/security-policy');
      const expires = Date.parse(fields.get('Expires')!);
      assert.match(fields.get('Expires')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.ok(Math.abs(expires - (t.clock.now() + 365 * DAY)) < 2000, answer.text);
    });

    it('takes a report: 202 with an ID, stored as received, an acknowledgement mailed, the address beside the audit chain only', async () => {
      let answer!: Awaited<ReturnType<typeof report>>;
      const mails = await mailsDuring(t, async () => {
        answer = await report({
          organization: t.org,
          title: 'Default credentials on the debug port',
          description: 'Port 2323 accepts admin/admin.',
          product: 'Test sensor',
          contact: 'researcher@example.net',
        });
      });
      assert.equal(answer.status, 202, answer.text);
      const id = answer.body.id as string;
      assert.match(answer.body.tracking, new RegExp(id));
      const ack = mails.filter((m) => m.kind === 'disclosure_ack');
      assert.equal(ack.length, 1);
      assert.equal(ack[0]!.to, 'researcher@example.net');
      assert.match(ack[0]!.text, new RegExp(id));

      const stored = await t.client().get(`/api/v1/disclosures/${id}`, { token: owner });
      assert.equal(stored.status, 200, stored.text);
      assert.equal(stored.body.state, 'received');
      assert.equal(stored.body.contact, 'researcher@example.net');
      assert.equal(stored.body.overdue, false);
      assert.equal(Date.parse(stored.body.acknowledgeBy) - Date.parse(stored.body.receivedAt), 7 * DAY);
      assert.equal(Date.parse(stored.body.resolveBy) - Date.parse(stored.body.receivedAt), 90 * DAY);

      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'disclosure.received', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, id);
      assert.equal(audited.entries[0]?.details.contact, 'researcher@example.net'); // merged in when read
      const chained = await t.platform.db
        .selectFrom('audit_log')
        .select('details')
        .where('action', '=', 'disclosure.received')
        .executeTakeFirstOrThrow();
      assert.ok(!String(chained.details).includes('researcher@example.net'), String(chained.details));
    });

    it('answers a report to an unknown organization alike, storing and mailing nothing', async () => {
      const before = (await t.client().get('/api/v1/disclosures', { token: owner })).body.reports.length;
      let answer!: Awaited<ReturnType<typeof report>>;
      const mails = await mailsDuring(t, async () => {
        answer = await report({ organization: 'no-such-brand', title: 'x', description: 'y', contact: 'probe@example.net' });
      });
      assert.equal(answer.status, 202, answer.text);
      assert.deepEqual(Object.keys(answer.body).sort(), ['acknowledgeBy', 'id', 'tracking']);
      assert.equal(mails.length, 0);
      const rows = await t.platform.db.selectFrom('disclosure_reports').select('id').where('id', '=', answer.body.id).execute();
      assert.equal(rows.length, 0);
      assert.equal((await t.client().get('/api/v1/disclosures', { token: owner })).body.reports.length, before);
    });

    it('refuses an invalid or oversize body with its code', async () => {
      const missing = await report({ organization: t.org, title: 'no description' });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, 'request.invalid');
      const extra = await report({ organization: t.org, title: 't', description: 'd', severity: 'critical' });
      assert.equal(extra.status, 400);
      const badMail = await report({ organization: t.org, title: 't', description: 'd', contact: 'not an address' });
      assert.equal(badMail.status, 400);
      assert.equal(badMail.body.error.code, 'request.invalid');
      const long = await report({ organization: t.org, title: 't', description: 'a'.repeat(8001) });
      assert.equal(long.status, 400);
      const huge = await report(undefined, JSON.stringify({ organization: t.org, title: 't', description: 'a'.repeat(60_000) }));
      assert.equal(huge.status, 413);
      assert.equal(huge.body.error.code, 'request.too_large');
    });

    it('lets the owner triage and fix with a note, audited; refuses a step out of order; an auditor reads but may not decide', async () => {
      const answer = await report({ organization: t.org, title: 'Weak TLS on the update host', description: 'TLS 1.0 is offered.' });
      const id = answer.body.id as string;
      const client = t.client();
      const skip = await client.post(`/api/v1/disclosures/${id}/state`, { state: 'fixed', note: 'done' }, { token: owner });
      assert.equal(skip.status, 409);
      assert.equal(skip.body.error.code, 'disclosure.transition_invalid');

      const auditor = await createOperator(t, 'auditor@example.com', 'auditor');
      const auditorToken = await signIn(t, auditor);
      assert.equal((await client.get(`/api/v1/disclosures/${id}`, { token: auditorToken })).status, 200);
      const denied = await client.post(`/api/v1/disclosures/${id}/state`, { state: 'triaged', note: 'mine' }, { token: auditorToken });
      assert.equal(denied.status, 403);

      const triaged = await client.post(
        `/api/v1/disclosures/${id}/state`,
        { state: 'triaged', note: 'confirmed on v1.2' },
        { token: owner },
      );
      assert.equal(triaged.status, 200, triaged.text);
      assert.equal(triaged.body.state, 'triaged');
      assert.ok(triaged.body.triagedAt);
      const fixed = await client.post(`/api/v1/disclosures/${id}/state`, { state: 'fixed', note: 'release 1.3' }, { token: owner });
      assert.equal(fixed.body.state, 'fixed');
      assert.ok(fixed.body.resolvedAt);
      const again = await client.post(`/api/v1/disclosures/${id}/state`, { state: 'rejected', note: 'oops' }, { token: owner });
      assert.equal(again.body.error.code, 'disclosure.transition_invalid');

      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'disclosure.state_changed', targetId: id });
      assert.deepEqual(audited.entries.map((e) => [e.details.from, e.details.to, e.details.note]).reverse(), [
        ['received', 'triaged', 'confirmed on v1.2'],
        ['triaged', 'fixed', 'release 1.3'],
      ]);
    });

    it('keeps reports from a non-operator and from another organization', async () => {
      const answer = await report({ organization: t.org, title: 'Open MQTT', description: 'Anonymous access.' });
      const id = answer.body.id as string;
      const client = t.client();
      assert.equal((await client.get('/api/v1/disclosures')).status, 401);
      await t.platform.accounts.service.createOrganization({ slug: 'org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
      const stranger = await createOperator(t, 'stranger@example.com', 'owner', 'org-b');
      const strangerToken = await signIn(t, stranger);
      assert.equal((await client.get(`/api/v1/disclosures/${id}`, { token: strangerToken })).status, 404);
      const theirs = await client.get('/api/v1/disclosures', { token: strangerToken });
      assert.ok(theirs.body.reports.every((r: { id: string }) => r.id !== id));
      const moved = await client.post(`/api/v1/disclosures/${id}/state`, { state: 'rejected', note: 'not ours' }, { token: strangerToken });
      assert.equal(moved.status, 404);
    });

    it('raises disclosure-overdue for a report past its triage deadline, and resolves it once handled', async () => {
      const answer = await report({ organization: t.org, title: 'Stale report', description: 'Nobody looked.' });
      const id = answer.body.id as string;
      // Eight days on, sessions have gone idle: the platform admin acts at the command line.
      t.clock.advance(8 * DAY);
      const admin = cliActor(orgId, 'test');
      const { service, disclosures } = t.platform.assessment;
      await service.run(admin, 'api');
      const open = await service.list(admin, { check: 'disclosure-overdue', state: 'open' });
      assert.equal(open.findings.length, 1);
      assert.equal(open.findings[0]!.severity, 'high');
      assert.ok(open.findings[0]!.resources.some((r) => r.type === 'disclosure' && r.id === id));
      assert.equal((await disclosures.get(admin, id)).overdue, true);

      for (const pending of (await disclosures.list(admin, 'received', 200)).reports)
        await disclosures.setState(admin, pending.id, 'rejected', 'duplicate');
      await service.run(admin, 'api');
      assert.equal((await service.list(admin, { check: 'disclosure-overdue', state: 'open' })).findings.length, 0);
    });

    it('publishes each product with its end of support and nothing else; an unknown organization lists none', async () => {
      const productId = await testProduct(t.platform, orgId, 'Door sensor');
      await testProduct(t.platform, orgId, 'Undeclared hub');
      const until = Date.parse('2031-12-31T00:00:00.000Z');
      await t.platform.devices.service.setSupportPeriod(cliActor(orgId, 'test'), productId, until);
      const answer = await t.client().get(`/api/v1/public/${t.org}/products`);
      assert.equal(answer.status, 200, answer.text);
      const door = answer.body.products.find((p: { name: string }) => p.name === 'Door sensor');
      assert.deepEqual(door, { name: 'Door sensor', supportUntil: '2031-12-31T00:00:00.000Z' });
      assert.ok(answer.body.products.every((p: object) => Object.keys(p).sort().join() === 'name,supportUntil'));
      assert.equal(answer.body.products.find((p: { name: string }) => p.name === 'Undeclared hub').supportUntil, null);
      const none = await t.client().get('/api/v1/public/no-such-brand/products');
      assert.deepEqual(none.body, { products: [] });
    });

    it('answers 429 request.rate_limited past reportsPerHour reports from one address', async () => {
      while (sent < REPORTS_PER_HOUR) {
        const ok = await report({ organization: t.org, title: 'filler', description: 'filler' });
        assert.equal(ok.status, 202, `report ${sent}: ${ok.text}`);
      }
      const limited = await report({ organization: t.org, title: 'one too many', description: 'x' });
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error.code, 'request.rate_limited');
      // The API beside it is not limited by the intake's budget.
      assert.equal((await t.client().get('/.well-known/security.txt')).status, 200);
    });

    it('holds at most maxUntriagedReports untriaged reports per organization: more are answered alike, dropped and audited', async () => {
      const admin = cliActor(orgId, 'test');
      const { disclosures } = t.platform.assessment;
      const untriaged = (await disclosures.list(admin, 'received', 200)).reports.length;
      const capped = new DisclosureService(new DisclosureStore(t.platform.db), t.platform.mailer, t.platform.audit, t.clock, {
        ...t.config,
        disclosure: { ...t.config.disclosure, maxUntriagedReports: untriaged + 1 },
      });
      const kept = await capped.receive({ organization: t.org, title: 'kept', description: 'd' }, '198.51.100.7');
      const dropped = await capped.receive({ organization: t.org, title: 'dropped', description: 'd' }, '198.51.100.7');
      assert.equal((await disclosures.get(admin, kept.id)).title, 'kept');
      await assert.rejects(disclosures.get(admin, dropped.id), /was not found/);
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'disclosure.dropped', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, dropped.id);
    });
  });
}
