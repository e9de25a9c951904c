import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UPDATE_METADATA_PATH } from '@bulwark/protocol';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, testImage } from '../testing/update-fixture.js';
import { HARDWARE, provisionTestDevice } from '../testing/update-device.js';
import { verifyVersionReport } from './report.js';
import { useUpdateFixture } from '../testing/update-suite.js';
import { Slots } from './slots.js';

describe('update agent: happy path', () => {
  const u = useUpdateFixture('agent');
  const { temp } = u;

  it('installs an update into slot b, commits it after the trial boot and raises the anti-rollback counter; the next goes back to slot a', async () => {
    const device = await provisionTestDevice(u.fixture, u.pki, temp.dir);
    const slots = new Slots(device.stateDir);
    const v110 = u.fixture.addRelease({
      version: '1.1.0',
      securityVersion: 2,
      hardwareIds: [HARDWARE],
      image: testImage('1.1.0', 200_000),
    });
    u.fixture.direct(device.deviceId, v110, { hardwareId: HARDWARE, rolloutId: 'r-110' });

    const first = await device.cycle();
    assert.equal(first.check, 'reboot', first.agent.lastError?.message);
    assert.deepEqual(first.boots, ['normal', 'committed']);
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    assert.equal(slots.manifest('b')?.sha256, sha256(v110.image));
    assert.equal(slots.counter(), 2);
    assert.ok(await slots.verify('b'));
    assert.deepEqual(
      device.statuses.map((s) => `${s.state} ${s.target} ${s.rolloutId}`),
      ['downloading', 'installing', 'rebooting', 'verifying', 'succeeded'].map(
        (state) => `${state} ${u.fixture.targetName('1.1.0')} r-110`,
      ),
    );

    const v120 = u.fixture.addRelease({
      version: '1.2.0',
      securityVersion: 2,
      hardwareIds: [HARDWARE],
      image: testImage('1.2.0', 150_000),
    });
    u.fixture.direct(device.deviceId, v120, { hardwareId: HARDWARE });
    const second = await device.cycle();
    assert.equal(second.check, 'reboot', second.agent.lastError?.message);
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
    assert.equal(slots.manifest('a')?.version, '1.2.0');

    const third = await device.cycle();
    assert.equal(third.check, 'up_to_date');

    const counters = device.reports.map((r) => r.report.counter);
    assert.deepEqual(
      counters,
      [...counters].sort((x, y) => x - y),
    );
    assert.equal(new Set(counters).size, counters.length);
    const last = device.reports.at(-1)!;
    assert.equal(last.report.running.version, '1.2.0');
    assert.equal(last.report.slot, 'a');
    const cert = readFileSync(join(device.identityDir, 'device.pem'), 'utf8');
    assert.ok(verifyVersionReport(last, cert));
    assert.equal(verifyVersionReport({ ...last, report: { ...last.report, counter: last.report.counter + 1 } }, cert), false);
  });

  /** A device the fixture's director sends to a new release, and where the fixture's request and connection logs stood then. */
  async function directedUpdate(version: string) {
    const device = await provisionTestDevice(u.fixture, u.pki, temp.dir);
    const release = u.fixture.addRelease({ version, securityVersion: 3, hardwareIds: [HARDWARE], image: testImage(version, 50_000) });
    u.fixture.direct(device.deviceId, release, { hardwareId: HARDWARE });
    return { device, release, requests: u.fixture.requests.length, connections: u.fixture.connections };
  }

  it('reads all the metadata of an update check in one request: an update is that request and the image, on one TLS connection', async () => {
    const { device, release, requests, connections } = await directedUpdate('1.4.0');
    const cycle = await device.cycle();
    assert.equal(cycle.check, 'reboot', cycle.agent.lastError?.message);
    const served = u.fixture.requests.slice(requests).map((r) => `${r.status} ${r.path}`);
    assert.deepEqual(served, [`200 ${UPDATE_METADATA_PATH}`, `200 ${u.fixture.imagePath(release)}`]);
    assert.equal(u.fixture.connections - connections, 1);

    // The next check: the device holds the snapshot, so the answer carries the timestamp and its director targets.
    const next = await device.cycle();
    assert.equal(next.check, 'up_to_date', next.agent.lastError?.message);
    assert.deepEqual(
      u.fixture.requests.slice(requests + 2).map((r) => `${r.status} ${r.path}`),
      [`200 ${UPDATE_METADATA_PATH}`],
    );
  });

  it("takes one TLS connection for a whole update from a platform without the one-request check: each root probe's 404 is read to its end, so the next request reuses the connection", async (t) => {
    u.fixture.bundles = false;
    t.after(() => {
      u.fixture.bundles = true;
    });
    const { device, release, requests, connections } = await directedUpdate('1.3.0');
    const cycle = await device.cycle();
    assert.equal(cycle.check, 'reboot', cycle.agent.lastError?.message);
    const served = u.fixture.requests.slice(requests);
    // The director's and the repository's next-root probes were answered 404, and the image was served after them.
    assert.equal(served.filter((r) => r.status === 404 && r.path.endsWith('.root.json')).length, 2, JSON.stringify(served));
    assert.ok(served.some((r) => r.path === u.fixture.imagePath(release) && r.status === 200));
    assert.equal(u.fixture.connections - connections, 1, JSON.stringify(served));
    assert.equal(new Set(served.map((r) => r.connection)).size, 1);
  });
});
