/**
 * Rotating a device's credentials revokes every certificate it holds and hands out the token that
 * enrolls its next key: from a person's session the API asks for a recent step-up first, as for
 * disable and retire. The attack: a left-open session without a fresh second proof rotates a
 * device directly, or through the assessment's re-key mitigation; each is refused with
 * auth.step_up_required, the certificate stays valid and no token is handed out. Right after a
 * step-up both pass. An API key with devices:write (automation) rotates and re-keys without one.
 * A new enrollment token for a device already enrolled (a second key beside its certificate)
 * follows the same rule; a pending device's first token (provisioning) does not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOperator, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { makeCsr, organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';

const STEP_UP_WINDOW_MS = 5 * 60_000;

for (const engine of ENGINES) {
  describe(`credential rotation behind step-up [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let orgId: string;
    let productId: string;
    let operator: TestUser;
    let token: string;

    before(async () => {
      ({ t } = await startOwnerPlatform(engine, { assessment: { intervalMinutes: 0 } }));
      orgId = await organizationIdOf(t.platform, t.org);
      productId = await testProduct(t.platform, orgId);
      operator = await createOperator(t, 'rotation-operator@example.com', 'operator');
      token = await signIn(t, operator);
    });
    after(() => t?.close());

    const rotate = (id: string, as = token) =>
      t.client().post(`/api/v1/devices/${id}/credentials/rotate`, { reason: 'keyCompromise' }, { token: as });
    const rotations = async (id: string) =>
      (await t.platform.audit.query({ organizationId: orgId, action: 'device.credentials_rotated', targetId: id })).entries.length;
    const stale = () => t.clock.advance(STEP_UP_WINDOW_MS + 1000);

    /** A device whose certificate expires within days, so the assessment opens a finding naming it. */
    async function expiringDevice(serial: string): Promise<TestDevice & { findingId: string }> {
      const device = await provisionTestDevice(t.platform, orgId, productId, serial);
      const { csr } = await makeCsr(device.id);
      await t.platform.pki.issueDeviceCertificate(
        { organizationId: orgId, deviceId: device.id, csrPem: csr, validityDays: 5 },
        { type: 'cli', id: 'test' },
      );
      await stepUp(t, operator, token);
      const ran = await t.client().post('/api/v1/assessment/runs', undefined, { token });
      assert.equal(ran.status, 201, ran.text);
      const list = await t.client().get('/api/v1/assessment/findings?check=device-certificate-expiring&state=open', { token });
      const finding = (list.body.findings as { id: string; resources: { type: string; id: string }[] }[]).find((f) =>
        f.resources.some((r) => r.type === 'device' && r.id === device.id),
      );
      assert.ok(finding, list.text);
      return { ...device, findingId: finding.id };
    }

    it('refuses rotation and the re-key mitigation from a session without a recent step-up, and changes nothing', async () => {
      const device = await expiringDevice('ROT-1');
      stale();
      const refused = await rotate(device.id);
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.error.code, 'auth.step_up_required');
      assert.equal(refused.body.token, undefined);
      const rekey = await t.client().post(`/api/v1/assessment/findings/${device.findingId}/actions`, { action: 'rekey' }, { token });
      assert.equal(rekey.status, 403, rekey.text);
      assert.equal(rekey.body.error.code, 'auth.step_up_required');
      assert.equal(await t.platform.pki.isActive(device.certSerial), true, 'the certificate is still valid');
      assert.equal(await rotations(device.id), 0, 'no rotation was recorded');
    });

    it('allows rotation right after a step-up, and refuses it again once the step-up is stale', async () => {
      const device = await provisionTestDevice(t.platform, orgId, productId, 'ROT-2');
      await stepUp(t, operator, token);
      const rotated = await rotate(device.id);
      assert.equal(rotated.status, 200, rotated.text);
      assert.deepEqual(rotated.body.revoked, [device.certSerial]);
      assert.match(rotated.body.token, /^bwt_/);
      assert.equal(await t.platform.pki.isActive(device.certSerial), false);
      stale();
      const late = await rotate(device.id);
      assert.equal(late.status, 403, late.text);
      assert.equal(late.body.error.code, 'auth.step_up_required');
      assert.equal(await rotations(device.id), 1);
    });

    it('lets the re-key mitigation through right after a step-up', async () => {
      const device = await expiringDevice('ROT-3');
      const rekey = await t.client().post(`/api/v1/assessment/findings/${device.findingId}/actions`, { action: 'rekey' }, { token });
      assert.equal(rekey.status, 200, rekey.text);
      assert.equal(rekey.body.results[0].outcome, 'done', rekey.text);
      assert.equal(await t.platform.pki.isActive(device.certSerial), false);
    });

    it('lets an API key with devices:write rotate and re-key without a step-up (automation)', async () => {
      const device = await expiringDevice('ROT-4');
      const other = await provisionTestDevice(t.platform, orgId, productId, 'ROT-5');
      await stepUp(t, operator, token);
      const created = await t
        .client()
        .post('/api/v1/me/api-keys', { name: 'rotation', scopes: ['devices:read', 'devices:write'], expiresInDays: 1 }, { token });
      assert.equal(created.status, 201, created.text);
      const key = created.body.secret as string;
      stale();
      const rotated = await rotate(other.id, key);
      assert.equal(rotated.status, 200, rotated.text);
      assert.equal(await t.platform.pki.isActive(other.certSerial), false);
      const rekey = await t.client().post(`/api/v1/assessment/findings/${device.findingId}/actions`, { action: 'rekey' }, { token: key });
      assert.equal(rekey.status, 200, rekey.text);
      assert.equal(rekey.body.results[0].outcome, 'done', rekey.text);
      assert.equal(await t.platform.pki.isActive(device.certSerial), false);
    });

    it('asks for a step-up before an enrollment token for an enrolled device (a second key beside its certificate), not for a pending one', async () => {
      const enrolled = await provisionTestDevice(t.platform, orgId, productId, 'ROT-6');
      const enrollmentToken = (id: string) => t.client().post(`/api/v1/devices/${id}/enrollment-token`, undefined, { token });
      const tokensFor = async (id: string) =>
        (await t.platform.audit.query({ organizationId: orgId, action: 'device.enrollment_token_created', targetId: id })).entries.length;
      stale();
      const refused = await enrollmentToken(enrolled.id);
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.error.code, 'auth.step_up_required');
      assert.equal(refused.body.token, undefined);
      assert.equal(await tokensFor(enrolled.id), 0, 'no token was recorded');
      const pending = await t.client().post('/api/v1/devices', { serial: 'ROT-7', productId }, { token });
      assert.equal(pending.status, 201, pending.text);
      assert.equal(pending.body.status, 'pending');
      const first = await enrollmentToken(pending.body.id);
      assert.equal(first.status, 201, `provisioning a pending device needs no step-up: ${first.text}`);
      await stepUp(t, operator, token);
      const afterStepUp = await enrollmentToken(enrolled.id);
      assert.equal(afterStepUp.status, 201, afterStepUp.text);
      assert.equal(await tokensFor(enrolled.id), 1);
    });

    it('answers an unknown device with 404 before asking for a step-up', async () => {
      stale();
      const unknown = await rotate('00000000-0000-4000-8000-000000000000');
      assert.equal(unknown.status, 404, unknown.text);
    });
  });
}
