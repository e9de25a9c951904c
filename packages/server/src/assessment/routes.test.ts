/**
 * The assessment API on a real node, on both engines: runs and findings through HTTPS, filters
 * and the cursor, suppression with its expiry, mitigations and who may act, the signed webhook
 * (a local receiver verifies the HMAC), and another organization's operator kept out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOperator, firstOwner, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { organizationIdOf, provisionTestDevice, testProduct, makeCsr } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpResponse } from '../testing/http.js';
import { mailsDuring } from '../testing/mail.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Received {
  body: string;
  signature: string | undefined;
}

/** A webhook receiver on an ephemeral port that keeps what it was sent. */
async function receiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['x-bulwark-signature'] as string | undefined });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/bulwark`, received };
}

/** What a receiver does: recompute the HMAC over the raw body and compare in constant time. */
function verifies(secret: string, body: string, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'));
  const given = Buffer.from(header.slice('sha256='.length));
  return expected.length === given.length && timingSafeEqual(expected, given);
}

for (const engine of ENGINES) {
  describe(`assessment API [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let orgId: string;
    let owner: string;
    let ownerUser: TestUser;
    let hook: Awaited<ReturnType<typeof receiver>>;

    before(async () => {
      t = await startTestPlatform(engine, { assessment: { intervalMinutes: 0 } });
      orgId = await organizationIdOf(t.platform, t.org);
      const session = await ownerSession(t);
      owner = session.token;
      ownerUser = await firstOwner(t, session);
      hook = await receiver();
    });
    after(async () => {
      hook?.server.close();
      await t?.close();
    });

    async function openFindingOf(check: string): Promise<{ id: string; state: string; resources: { type: string; id: string }[] }> {
      const client = t.client();
      const ran = await client.post('/api/v1/assessment/runs', undefined, { token: owner });
      assert.equal(ran.status, 201, ran.text);
      const list = await client.get(`/api/v1/assessment/findings?check=${check}&state=open`, { token: owner });
      assert.equal(list.status, 200, list.text);
      assert.equal(list.body.findings.length, 1, list.text);
      return list.body.findings[0];
    }

    it('runs on demand, records the run, and lists findings with filters and a cursor', async () => {
      const client = t.client();
      const ran = await client.post('/api/v1/assessment/runs', undefined, { token: owner });
      assert.equal(ran.status, 201, ran.text);
      assert.ok(ran.body.opened >= 2, ran.text); // no backup, never drilled
      const runs = await client.get('/api/v1/assessment/runs', { token: owner });
      assert.equal(runs.body.runs[0].id, ran.body.id);
      const checks = await client.get('/api/v1/assessment/checks', { token: owner });
      assert.ok(checks.body.checks.every((c: { rationale: string }) => c.rationale.length > 10));

      const all = await client.get('/api/v1/assessment/findings?state=open', { token: owner });
      assert.ok(all.body.findings.length >= 2);
      const first = await client.get('/api/v1/assessment/findings?state=open&limit=1', { token: owner });
      assert.equal(first.body.findings.length, 1);
      assert.ok(first.body.nextCursor);
      const second = await client.get(`/api/v1/assessment/findings?state=open&limit=1&cursor=${first.body.nextCursor}`, { token: owner });
      assert.notEqual(second.body.findings[0].id, first.body.findings[0].id);
      const high = await client.get('/api/v1/assessment/findings?severity=high', { token: owner });
      assert.ok(high.body.findings.every((f: { severity: string }) => f.severity === 'high'));
      const bad = await client.get('/api/v1/assessment/findings?severity=urgent', { token: owner });
      assert.equal(bad.status, 400);
    });

    it('suppresses a finding with a reason until a date; the suppression expires and the finding is open again', async () => {
      const client = t.client();
      const found = await openFindingOf('backup-not-drilled');
      const past = await client.post(
        `/api/v1/assessment/findings/${found.id}/suppress`,
        { reason: 'drill scheduled', until: new Date(t.clock.now() - HOUR).toISOString() },
        { token: owner },
      );
      assert.equal(past.status, 400);
      assert.equal(past.body.error.code, 'assessment.suppression_invalid');
      const tooFar = await client.post(
        `/api/v1/assessment/findings/${found.id}/suppress`,
        { reason: 'drill scheduled', until: new Date(t.clock.now() + 400 * 24 * HOUR).toISOString() },
        { token: owner },
      );
      assert.equal(tooFar.body.error.code, 'assessment.suppression_invalid');

      // Ten minutes: within the session's idle timeout, so the same session reads it after the expiry.
      const until = new Date(t.clock.now() + 10 * MINUTE).toISOString();
      const suppressed = await client.post(
        `/api/v1/assessment/findings/${found.id}/suppress`,
        { reason: 'first drill is booked for next week', until },
        { token: owner },
      );
      assert.equal(suppressed.status, 200, suppressed.text);
      assert.equal(suppressed.body.state, 'suppressed');
      assert.equal(suppressed.body.suppression.until, until);
      assert.equal(suppressed.body.suppression.reason, 'first drill is booked for next week');
      // Still observed: a run keeps it suppressed.
      await client.post('/api/v1/assessment/runs', undefined, { token: owner });
      assert.equal((await client.get(`/api/v1/assessment/findings/${found.id}`, { token: owner })).body.state, 'suppressed');
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'assessment.finding_suppressed', limit: 1 });
      assert.equal(audited.entries[0]?.target.id, found.id);

      t.clock.advance(10 * MINUTE + 1);
      const expired = await client.get(`/api/v1/assessment/findings/${found.id}`, { token: owner });
      assert.equal(expired.body.state, 'open');
      assert.equal(expired.body.suppression, null);
    });

    it('revokes the certificates a finding names, and re-keys its devices (the token is answered, never audited)', async () => {
      const client = t.client();
      const productId = await testProduct(t.platform, orgId);
      const device = await provisionTestDevice(t.platform, orgId, productId, 'ACT-1');
      const { csr } = await makeCsr(device.id);
      const short = await t.platform.pki.issueDeviceCertificate(
        { organizationId: orgId, deviceId: device.id, csrPem: csr, validityDays: 5 },
        { type: 'cli', id: 'test' },
      );
      const found = await openFindingOf('device-certificate-expiring');
      const revoked = await client.post(`/api/v1/assessment/findings/${found.id}/actions`, { action: 'revoke' }, { token: owner });
      assert.equal(revoked.status, 200, revoked.text);
      assert.deepEqual(revoked.body.results, [{ resource: { type: 'certificate', id: short.serial }, outcome: 'done' }]);
      assert.equal(await t.platform.pki.isActive(short.serial), false);

      await stepUp(t, ownerUser, owner); // a re-key rotates credentials: a session needs a recent step-up
      const rekeyed = await client.post(`/api/v1/assessment/findings/${found.id}/actions`, { action: 'rekey' }, { token: owner });
      assert.equal(rekeyed.status, 200, rekeyed.text);
      const token = rekeyed.body.results[0].enrollmentToken as string;
      assert.match(token, /^bwt_/);
      assert.equal(await t.platform.pki.isActive(device.certSerial), false);
      const audited = await t.platform.audit.query({ organizationId: orgId, action: 'assessment.mitigation', limit: 1 });
      assert.equal(audited.entries[0]?.details.action, 'rekey');
      assert.ok(!JSON.stringify(audited.entries[0]).includes(token));

      const backup = await openFindingOf('backup-stale');
      const refused = await client.post(`/api/v1/assessment/findings/${backup.id}/actions`, { action: 'revoke' }, { token: owner });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'assessment.mitigation_not_applicable');
    });

    it('notifies the owners by mail and the webhook with an HMAC-SHA256 signature over the body', async () => {
      const client = t.client();
      const invalid = await client.request('PUT', '/api/v1/assessment/webhook', { body: { url: 'ftp://example.com/x' }, token: owner });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.error.code, 'assessment.webhook_invalid');
      // The deployment's own network is refused unless the operator of the deployment allows it.
      for (const url of [hook.url, 'https://10.1.2.3/hook', 'https://[::ffff:169.254.169.254]/latest', 'https://localhost/x']) {
        const internal = await client.request('PUT', '/api/v1/assessment/webhook', { body: { url }, token: owner });
        assert.equal(internal.status, 400, url);
        assert.equal(internal.body.error.code, 'assessment.webhook_invalid', url);
      }
      t.platform.config.assessment.webhookPrivateAddresses = true; // the test's receiver listens on 127.0.0.1
      const set = await client.request('PUT', '/api/v1/assessment/webhook', { body: { url: hook.url }, token: owner });
      assert.equal(set.status, 200, set.text);
      const secret = set.body.secret as string;
      assert.match(secret, /^bwhk_/);
      // Sealed at rest: the secret is not in the database.
      const row = await t.platform.db
        .selectFrom('assessment_settings')
        .selectAll()
        .where('organization_id', '=', orgId)
        .executeTakeFirstOrThrow();
      assert.ok(row.webhook_secret && !row.webhook_secret.includes(secret.slice(5)));

      const found = await openFindingOf('backup-stale');
      let answer: HttpResponse | undefined;
      const mails = await mailsDuring(t, async () => {
        answer = await client.post(`/api/v1/assessment/findings/${found.id}/actions`, { action: 'notify' }, { token: owner });
      });
      assert.equal(answer!.status, 200, answer!.text);
      assert.deepEqual(answer!.body.notified, { mailedTo: 1, webhook: { url: hook.url, status: 204 } });
      assert.equal(mails.length, 1);
      assert.equal(mails[0]!.to, t.owner.email);
      assert.equal(mails[0]!.kind, 'assessment_finding');
      assert.match(mails[0]!.text, new RegExp(found.id));

      assert.equal(hook.received.length, 1);
      const delivery = hook.received[0]!;
      assert.ok(verifies(secret, delivery.body, delivery.signature), 'the receiver verifies the signature');
      assert.equal(JSON.parse(delivery.body).finding.id, found.id);
      // A body changed in transit, or signed with another secret, does not verify.
      assert.equal(verifies(secret, delivery.body.replace('backup-stale', 'backup-fresh'), delivery.signature), false);
      assert.equal(verifies('bwhk_other', delivery.body, delivery.signature), false);

      hook.server.closeAllConnections();
      await new Promise<void>((resolve) => hook.server.close(() => resolve()));
      const failed = await client.post(`/api/v1/assessment/findings/${found.id}/actions`, { action: 'notify' }, { token: owner });
      assert.equal(failed.status, 502);
      assert.equal(failed.body.error.code, 'assessment.webhook_failed');
    });

    it('lets an auditor read but not act, and keeps another organization out', async () => {
      const auditor = await createOperator(t, 'auditor@example.com', 'auditor');
      const auditorToken = await signIn(t, auditor);
      const client = t.client();
      const found = await openFindingOf('backup-stale');
      assert.equal((await client.get(`/api/v1/assessment/findings/${found.id}`, { token: auditorToken })).status, 200);
      const act = await client.post(`/api/v1/assessment/findings/${found.id}/actions`, { action: 'notify' }, { token: auditorToken });
      assert.equal(act.status, 403);
      const suppress = await client.post(
        `/api/v1/assessment/findings/${found.id}/suppress`,
        { reason: 'not mine to accept', until: new Date(t.clock.now() + HOUR).toISOString() },
        { token: auditorToken },
      );
      assert.equal(suppress.status, 403);

      await t.platform.accounts.service.createOrganization({ slug: 'org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
      const stranger = await createOperator(t, 'stranger@example.com', 'operator', 'org-b');
      const strangerToken = await signIn(t, stranger);
      assert.equal((await client.get(`/api/v1/assessment/findings/${found.id}`, { token: strangerToken })).status, 404);
      const theirs = await client.post(
        `/api/v1/assessment/findings/${found.id}/actions`,
        { action: 'quarantine' },
        { token: strangerToken },
      );
      assert.equal(theirs.status, 404);
      const list = await client.get('/api/v1/assessment/findings', { token: strangerToken });
      assert.ok(list.body.findings.every((f: { organizationId: string }) => f.organizationId !== orgId));
    });
  });
}
