import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceClient } from './client.js';
import { PlatformError } from './errors.js';
import { enroll, renew } from './est.js';
import { CERT_FILE, KEY_FILE } from './identity.js';
import { startDevicePlatform, tempDir, type DevicePlatform } from './testing/platform.js';

const spki = (pem: string) => createPublicKey(pem).export({ format: 'der', type: 'spki' });

describe('enrollment over EST against a real platform', () => {
  let p: DevicePlatform;
  const dirs: { remove(): void }[] = [];
  const fresh = () => {
    const d = tempDir('est');
    dirs.push(d);
    return join(d.dir, 'identity');
  };
  before(async () => {
    p = await startDevicePlatform();
  });
  after(async () => {
    await p?.close();
    dirs.forEach((d) => d.remove());
  });

  it('enrolls with a one-time token: key made on the device (0600), certificate for it naming the device, device active', async () => {
    const deviceId = await p.register();
    const dir = fresh();
    const identity = await enroll({ apiUrl: p.apiUrl, ca: p.t.ca, token: await p.enrollmentToken(deviceId), deviceId, dir });
    assert.equal(identity.deviceId, deviceId);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
    const cert = new X509Certificate(readFileSync(join(dir, CERT_FILE)));
    assert.equal(cert.subject, `CN=${deviceId}`);
    assert.ok(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(spki(readFileSync(join(dir, KEY_FILE), 'utf8'))));
    // The platform recorded the certificate it issued, for this device.
    const issued = await p.t.platform.db
      .selectFrom('issued_certificates')
      .selectAll()
      .where('serial', '=', cert.serialNumber.toLowerCase())
      .executeTakeFirst();
    assert.equal(issued?.device_id, deviceId);
    const device = await p.t.platform.db.selectFrom('devices').select('status').where('id', '=', deviceId).executeTakeFirstOrThrow();
    assert.equal(device.status, 'active');
  });

  it('surfaces the platform’s code and message when the token is spent, and installs nothing', async () => {
    const deviceId = await p.register();
    const token = await p.enrollmentToken(deviceId);
    await enroll({ apiUrl: p.apiUrl, ca: p.t.ca, token, deviceId, dir: fresh() });
    const dir = fresh();
    await assert.rejects(enroll({ apiUrl: p.apiUrl, ca: p.t.ca, token, deviceId, dir }), (error: unknown) => {
      assert.ok(error instanceof PlatformError);
      assert.equal(error.code, 'auth.token_invalid');
      assert.equal(error.status, 401);
      assert.match(error.message, /already used/);
      return true;
    });
    assert.equal(existsSync(join(dir, KEY_FILE)), false);
    assert.equal(existsSync(join(dir, CERT_FILE)), false);
  });

  it('refuses a platform whose certificate does not chain to the given root', async () => {
    const deviceId = await p.register();
    const other = await startDevicePlatform();
    try {
      await assert.rejects(
        enroll({ apiUrl: p.apiUrl, ca: other.t.ca, token: await p.enrollmentToken(deviceId), deviceId, dir: fresh() }),
        /certificate/i,
      );
    } finally {
      await other.close();
    }
  });

  it('renews with the current certificate as TLS client certificate, with a new key, and connects with it', async () => {
    const deviceId = await p.register();
    const dir = fresh();
    const first = await enroll({ apiUrl: p.apiUrl, ca: p.t.ca, token: await p.enrollmentToken(deviceId), deviceId, dir });
    const renewed = await renew({ apiUrl: p.apiUrl, dir });
    assert.equal(renewed.deviceId, deviceId);
    assert.notEqual(new X509Certificate(renewed.cert).serialNumber, new X509Certificate(first.cert).serialNumber);
    assert.ok(!spki(renewed.key as string).equals(spki(first.key as string)), 'a new key');
    assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
    const audit = await p.t.platform.db.selectFrom('audit_log').select('details').where('action', '=', 'pki.certificate_renewed').execute();
    assert.ok(audit.some((row) => JSON.parse(row.details).rekeyed === true && JSON.parse(row.details).deviceId === deviceId));

    const client = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl });
    try {
      await client.connect();
      client.sendTelemetry({ renewed: true });
      await client.drained(5000);
      assert.equal(await p.stored(deviceId), 1);
    } finally {
      await client.stop();
    }
  });
});
