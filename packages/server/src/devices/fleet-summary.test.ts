/**
 * The console's read routes on both engines: GET /fleet/summary counts the organization's devices
 * by status, product and firmware version and how many are connected now; GET
 * /devices/:id/certificates lists a device's certificates with fingerprint and revocation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { cliActor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { connectDevice, presenceOnline } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

for (const engine of ENGINES) {
  describe(`fleet summary and device certificates [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let device: TestDevice;
    let client: MqttClient;
    let sensor: string;
    let lock: string;

    before(async () => {
      t = await startTestPlatform(engine);
      const org = await organizationIdOf(t.platform, t.org);
      sensor = await testProduct(t.platform, org, 'Sensor');
      lock = await testProduct(t.platform, org, 'Lock');
      const rows = Array.from({ length: 30 }, (_, i) => ({ line: i + 1, value: { serial: `FS-${i}`, productId: i < 20 ? sensor : lock } }));
      await t.platform.devices.service.import(cliActor(org, 'test'), rows, 'ndjson');
      await t.platform.db
        .updateTable('devices')
        .set({ firmware_version: '1.2.0' })
        .where('serial', 'in', ['FS-0', 'FS-1', 'FS-2'])
        .execute();
      await t.platform.db.updateTable('devices').set({ firmware_version: '1.3.0' }).where('serial', '=', 'FS-3').execute();
      device = await provisionTestDevice(t.platform, org, lock, 'FS-ONLINE');
      client = await connectDevice(t.server.mqtt!.port, t.ca, device, device.id);
      await presenceOnline(t.platform.db, device.id);
      ({ token } = await ownerSession(t));
    });
    after(async () => {
      client?.end(true);
      await t?.close();
    });

    it('counts devices by status, product and firmware version, and those online now', async () => {
      const summary = await t.client().get('/api/v1/fleet/summary', { token });
      assert.equal(summary.status, 200, summary.text);
      assert.equal(summary.body.total, 31);
      assert.equal(summary.body.online, 1);
      const byStatus = Object.fromEntries(summary.body.byStatus.map((s: any) => [s.status, s.count]));
      assert.deepEqual(byStatus, { pending: 30, active: 1 });
      const byProduct = Object.fromEntries(summary.body.byProduct.map((p: any) => [p.productId, p.count]));
      assert.deepEqual(byProduct, { [sensor]: 20, [lock]: 11 });
      assert.deepEqual(summary.body.byFirmware, [
        { version: null, count: 27 },
        { version: '1.2.0', count: 3 },
        { version: '1.3.0', count: 1 },
      ]);
      assert.equal((await t.client().get('/api/v1/fleet/summary')).status, 401);
    });

    it("lists a device's certificates with fingerprint, validity and revocation", async () => {
      const path = `/api/v1/devices/${device.id}/certificates`;
      const before = await t.client().get(path, { token });
      assert.equal(before.status, 200, before.text);
      assert.equal(before.body.certificates.length, 1);
      const [certificate] = before.body.certificates;
      assert.equal(certificate.serial, device.certSerial);
      assert.match(certificate.fingerprintSha256, /^[0-9a-f]{64}$/);
      assert.deepEqual([certificate.status, certificate.revokedAt], ['active', null]);
      assert.ok(Date.parse(certificate.notAfter) > Date.parse(certificate.notBefore));

      const rotated = await t.client().post(`/api/v1/devices/${device.id}/credentials/rotate`, {}, { token });
      assert.equal(rotated.status, 200, rotated.text);
      const afterRotation = await t.client().get(path, { token });
      assert.equal(afterRotation.body.certificates[0].status, 'revoked');
      assert.ok(afterRotation.body.certificates[0].revokedAt);
      assert.equal((await t.client().get('/api/v1/devices/no-such-device/certificates', { token })).status, 404);
    });
  });
}
