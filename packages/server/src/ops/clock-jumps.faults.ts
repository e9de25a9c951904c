/**
 * The clock jumping forward and back (issue 17, failure scenarios): the platform's Clock (sessions,
 * certificate validity, everything the services date) moved in a running node, and the wall
 * clock that the per-device rate buckets read stepped back as an NTP correction would. The safe
 * outcomes: a jump back neither crashes anything nor extends a session or a certificate, a jump
 * forward ends what has expired, and no device is locked out of its rate for the length of a step.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { connectDevice } from '../testing/mqtt.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { TokenBucket } from '../transport/mqtt/guard.js';

const HOUR = 3_600_000;
const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

describe('the clock jumping forward and back [sqlite]', () => {
  let t: TestPlatform;
  let device: TestDevice;
  let token: string;

  before(async () => {
    t = await startTestPlatform(sqlite, { mqtt: { port: 0 } });
    const org = await organizationIdOf(t.platform, t.org);
    device = await provisionTestDevice(t.platform, org, await testProduct(t.platform, org), 'CLOCK-1');
    ({ token } = await ownerSession(t));
  });
  after(async () => {
    await t?.close();
  });

  it('a session survives a jump back without being extended, and a jump forward past its idle timeout ends it', async () => {
    const api = t.client();
    assert.equal((await api.get('/api/v1/me', { token })).status, 200);
    t.clock.advance(-2 * HOUR);
    const back = await api.get('/api/v1/me', { token });
    assert.equal(back.status, 200, back.text);
    // Idle timeout 30 minutes: 31 minutes after the last use in either timeline.
    t.clock.advance(2 * HOUR + 31 * 60_000);
    const forward = await api.get('/api/v1/me', { token });
    assert.equal(forward.status, 401, forward.text);
    assert.equal(forward.body.error.code, 'auth.unauthenticated');
    t.clock.advance(-2 * HOUR);
    assert.equal((await api.get('/api/v1/me', { token })).status, 401, 'an ended session stays ended when the clock goes back');
    t.clock.advance(2 * HOUR);
  });

  it('a device certificate is refused at CONNECT while the platform clock is past its end or before its start, and accepted once the clock is right', async () => {
    const cert = new X509Certificate(device.cert);
    const [notBefore, notAfter] = [new Date(cert.validFrom).getTime(), new Date(cert.validTo).getTime()];
    const now = t.clock.now();
    t.clock.advance(notAfter - now + HOUR);
    await assert.rejects(connectDevice(t.server.mqtt!.port, t.ca, device, device.id), /Not authorized/, 'past notAfter');
    t.clock.advance(notBefore - notAfter - 2 * HOUR);
    await assert.rejects(connectDevice(t.server.mqtt!.port, t.ca, device, device.id), /Not authorized/, 'before notBefore');
    t.clock.advance(now - (notBefore - HOUR));
    const client = await connectDevice(t.server.mqtt!.port, t.ca, device, device.id);
    client.end(true);
  });

  it('a device’s rate bucket keeps refilling after the wall clock steps back an hour, and a step forward refills it no further than its burst', () => {
    const start = Date.UTC(2026, 0, 1);
    const bucket = new TokenBucket(10, 10, start);
    for (let i = 0; i < 10; i++) assert.equal(bucket.take(start), true);
    assert.equal(bucket.take(start), false, 'empty');
    const stepped = start - HOUR;
    assert.equal(bucket.take(stepped), false, 'no refill from the step itself');
    assert.equal(bucket.take(stepped + 1000), true, 'a second after the step back, refilled at its rate (not an hour later)');
    const forward = stepped + 24 * HOUR;
    let taken = 0;
    while (bucket.take(forward)) taken++;
    assert.equal(taken, 10, 'a day forward refills to the burst, no more');
    assert.equal(bucket.borrow(forward - 5 * HOUR, 10), 1000, 'borrowing after a step back waits for the debt at the rate');
  });
});
