import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RolloutDeviceState } from '@bulwark/protocol';
import { provisionTestDevice, type TestDevice, ownerSession, hardwareProduct } from '@bulwark/server/testing';
import { setUpFleetRepository, type FleetRepository, type PublishedRelease } from '../testing/fleet-update.js';
import { eventually, startDevicePlatform, type DevicePlatform } from '../testing/platform.js';
import { inBatches } from './batches.js';
import { UpdateFleet } from './update-fleet.js';

/** The fleet size: 1,000 devices, each with its own key, certificate, MQTT connection and agent state. */
const FLEET = 1000;
const FAIL_HEALTH = 0.2;
const PHASES = [
  { percent: 10, soakSeconds: 0 },
  { percent: 50, soakSeconds: 0 },
  { percent: 100, soakSeconds: 0 },
];

describe(`a rollout to ${FLEET} simulated devices running the real update agent`, () => {
  let p: DevicePlatform;
  let token: string;
  let repo: FleetRepository;
  let fleet: UpdateFleet;
  // The agents' state directories go on tmpfs where there is one: 1,000 devices' durable writes
  // (fsync per file) would otherwise dominate the run; durability has its own power-cut tests.
  const stateRoot = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulwark-fleet-update-'));
  const timings: string[] = [];
  let mark = Date.now();
  const lap = (what: string) => {
    timings.push(`${what} ${((Date.now() - mark) / 1000).toFixed(1)} s`);
    mark = Date.now();
  };
  const identities: TestDevice[] = [];

  before(async () => {
    p = await startDevicePlatform();
    const product = await hardwareProduct(p.t.platform, p.org, 'Fleet sensor', 'hw-fleet');
    // Certificates first: signing in moves the platform clock ahead of the wall clock TLS checks them with.
    await inBatches(
      Array.from({ length: FLEET }, (_, i) => i),
      8,
      async (i) => void (identities[i] = await provisionTestDevice(p.t.platform, p.org, product, `FLEET-${String(i).padStart(5, '0')}`)),
    );
    lap(`${FLEET} certificates`);
    ({ token } = await ownerSession(p.t));
    repo = await setUpFleetRepository(p.t.platform, p.org, product, 'hw-fleet');
    fleet = new UpdateFleet({
      apiUrl: p.apiUrl,
      brokerUrl: p.brokerUrl,
      ca: p.t.ca,
      organizationId: p.org,
      hardwareId: 'hw-fleet',
      identities: identities.map((d) => ({ deviceId: d.id, key: d.key, cert: d.cert })),
      stateRoot,
      factory: repo.factory,
      failHealth: FAIL_HEALTH,
    });
    lap('agent state directories');
    await fleet.start();
    lap('boot and connect');
  });
  after(async () => {
    console.log(`fleet of ${FLEET}: ${timings.join(', ')}`);
    await fleet?.stop();
    await p?.close();
    rmSync(stateRoot, { recursive: true, force: true });
  });

  const api = async (path: string) => {
    const res = await p.t.client().get(path, { token });
    assert.equal(res.status, 200, res.text);
    return res.body;
  };
  async function devicesIn(rolloutId: string, state: RolloutDeviceState): Promise<{ deviceId: string; phase: number }[]> {
    const devices: { deviceId: string; phase: number }[] = [];
    let cursor: string | null = null;
    do {
      const page = (await api(
        `/api/v1/updates/rollouts/${rolloutId}/devices?state=${state}&limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      )) as { devices: { deviceId: string; phase: number }[]; nextCursor: string | null };
      devices.push(...page.devices);
      cursor = page.nextCursor;
    } while (cursor);
    return devices;
  }
  const sorted = (devices: { deviceId: string }[]) => devices.map((d) => d.deviceId).sort();

  it('halts by itself in its first phase when a fifth of the devices fail their health check; those roll back on their own and no later phase starts', async () => {
    assert.equal(fleet.progress().connected, FLEET, fleet.progress().failures.join('\n'));
    const release: PublishedRelease = await repo.publish('2.0.0', 1);
    const rolloutId = await repo.rollout({
      releaseId: release.id,
      selector: { deviceIds: identities.map((d) => d.id) },
      phases: PHASES,
      failureThreshold: 0.1,
    });
    // The platform ranks devices into phases by a hash of the rollout ID, so which devices share the
    // first phase changes from run to run: check that this draw put enough failing devices in it
    // (with 1,000 devices, about 20 of 100 are expected; fewer than 10 has a chance near 0.1 %).
    const plan = await devicesIn(rolloutId, 'pending');
    assert.equal(plan.length, FLEET);
    const firstPhase = sorted(plan.filter((d) => d.phase === 0));
    assert.equal(firstPhase.length, Math.ceil((FLEET * PHASES[0]!.percent) / 100));
    const failing = new Set(fleet.devices.filter((d) => d.failsHealthCheck).map((d) => d.identity.deviceId));
    const failingFirst = firstPhase.filter((id) => failing.has(id)).length;
    assert.ok(
      failingFirst >= firstPhase.length * 0.1,
      `precondition: ${failingFirst} of the ${firstPhase.length} first-phase devices fail their health check, at least 10 % needed`,
    );

    // Drive the rollout as the server's timer would, until it stops running by itself.
    let status = 'running';
    await eventually(
      async () => {
        await p.t.platform.updates.rollouts.tick();
        status = ((await api(`/api/v1/updates/rollouts/${rolloutId}`)) as { status: string }).status;
        return status !== 'running';
      },
      120_000,
      'the rollout stops running',
    );
    assert.equal(status, 'halted');
    lap('rollout until halted');
    const factorySha256 = createHash('sha256').update(repo.factory.image).digest('hex');

    // Devices already offered finish what they started; nothing new is offered once halted.
    await fleet.idle();
    lap('offered devices finish');

    const onDisk = new Map(fleet.devices.map((d) => [d.identity.deviceId, { device: d, disk: d.onDisk() }]));
    const succeeded = [...onDisk.values()].filter(({ disk }) => disk.activeSlot === 'b' && disk.version === '2.0.0');
    const rolledBack = [...onDisk.values()].filter(({ disk }) => disk.activeSlot === 'a' && disk.rejected);
    const untouched = [...onDisk.values()].filter(
      ({ device, disk }) => disk.activeSlot === 'a' && disk.sha256 === factorySha256 && !disk.rejected && device.state === 'idle',
    );
    timings.push(
      `devices: ${succeeded.length} updated, ${rolledBack.length} rolled back, ${untouched.length} untouched (${firstPhase.length} in the first phase, ${failingFirst} of them made to fail)`,
    );
    assert.equal(
      succeeded.length + rolledBack.length + untouched.length,
      FLEET,
      `every device is updated, rolled back or untouched; ${fleet.progress().failures.join('; ')}`,
    );

    // Only first-phase devices ran the release (those that had not started when it halted are
    // refused it by the director); each of them made to fail rolled back by itself, and the
    // devices of later phases were never even told to check.
    const ids = (list: { disk: { deviceId: string } }[]) => list.map((e) => e.disk.deviceId).sort();
    const inFirstPhase = new Set(firstPhase);
    for (const id of ids([...succeeded, ...rolledBack])) assert.ok(inFirstPhase.has(id), `${id} ran the release outside the first phase`);
    assert.ok(rolledBack.length >= firstPhase.length * 0.1, `${rolledBack.length} rolled back: the threshold was crossed`);
    for (const { device, disk } of untouched)
      if (!inFirstPhase.has(disk.deviceId)) assert.deepEqual(device.checks, [], `${disk.deviceId} of a later phase checked`);
    for (const { device } of untouched) assert.ok(device.checks.every((c) => c === 'up_to_date'));
    for (const { device, disk } of rolledBack) {
      assert.equal(device.failsHealthCheck, true, `${disk.deviceId} rolled back without being made to fail`);
      assert.equal(disk.version, '1.0.0');
      assert.equal(device.state, 'rolled_back');
      assert.deepEqual(device.boots.slice(-2), ['reboot', 'rolled_back']);
    }
    for (const { device } of succeeded) {
      assert.equal(device.failsHealthCheck, false);
      assert.equal(device.state, 'succeeded');
    }

    // The platform's counts and lists agree with what the devices' own state directories say (once their last statuses arrived).
    const expected = {
      pending: untouched.length,
      downloading: 0,
      installing: 0,
      rebooting: 0,
      verifying: 0,
      succeeded: succeeded.length,
      failed: 0,
      rolled_back: rolledBack.length,
    };
    let detail = { status: '', currentPhase: -1, counts: {} as Record<RolloutDeviceState, number> };
    await eventually(
      async () => {
        detail = (await api(`/api/v1/updates/rollouts/${rolloutId}`)) as typeof detail;
        return (
          detail.counts.pending === expected.pending &&
          detail.counts.succeeded === expected.succeeded &&
          detail.counts.rolled_back === expected.rolled_back
        );
      },
      30_000,
      'the platform has every status the devices sent',
    );
    assert.deepEqual(detail.counts, expected);
    assert.equal(detail.status, 'halted');
    assert.equal(detail.currentPhase, 0);
    assert.deepEqual(sorted(await devicesIn(rolloutId, 'rolled_back')), ids(rolledBack));
    assert.deepEqual(sorted(await devicesIn(rolloutId, 'succeeded')), ids(succeeded));
    assert.deepEqual(sorted(await devicesIn(rolloutId, 'pending')), ids(untouched));
    const progress = fleet.progress();
    assert.deepEqual(
      [progress.states.succeeded, progress.states.rolled_back, progress.states.idle],
      [succeeded.length, rolledBack.length, untouched.length],
    );
    assert.equal(progress.errors, 0, progress.failures.join('\n'));
  });
});
