/**
 * For the update agent's attack tests: a fresh fixture server and device per test (an attack may
 * leave the fixture in any state), a release builder, and the assertion that a cycle was refused
 * with a given code while the device kept running slot a untouched.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { UpdateErrorCode } from '@bulwark/protocol';
import { Slots } from '../updates/slots.js';
import { tempDir } from './temp.js';
import { HARDWARE, provisionTestDevice, type TestDevice } from './update-device.js';
import { testImage, UpdateFixture, type FixtureRelease } from './update-fixture.js';
import { makeTestPki, type TestPki } from './update-pki.js';

export interface AttackWorld {
  readonly pki: TestPki;
  /** A new fixture server (closed after the suite) and a device provisioned against it. */
  setup(factory?: { version: string; securityVersion: number }): Promise<{ fixture: UpdateFixture; device: TestDevice }>;
  /** Another fixture server (an impostor, or a second world), closed after the suite. */
  fixture(pki?: TestPki): Promise<UpdateFixture>;
}

/** How the device reads metadata: in the check's one answer (the platform today) or file by file (a platform from before it). */
export const METADATA_TRANSPORTS = [
  { name: 'one request per check', bundles: true },
  { name: 'file by file', bundles: false },
] as const;

export function useAttackWorld(prefix: string, options: { bundles?: boolean } = {}): AttackWorld {
  const fixtures: UpdateFixture[] = [];
  const temp = tempDir(prefix);
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });
  after(async () => {
    await Promise.all(fixtures.map((f) => f.close()));
    temp.remove();
  });
  const world: AttackWorld = {
    get pki() {
      return pki;
    },
    async fixture(other = pki) {
      const fixture = await UpdateFixture.start(other);
      fixture.bundles = options.bundles ?? true;
      fixtures.push(fixture);
      return fixture;
    },
    async setup(factory) {
      const fixture = await world.fixture();
      return { fixture, device: await provisionTestDevice(fixture, pki, temp.dir, factory) };
    },
  };
  return world;
}

/** A release for the device's hardware (securityVersion 1, a 100 kB image) with `extra` on top. */
export const release = (version: string, extra: Partial<FixtureRelease> = {}): FixtureRelease => ({
  version,
  securityVersion: 1,
  hardwareIds: [HARDWARE],
  image: testImage(version, 100_000),
  ...extra,
});

/** Runs a cycle and checks the refusal's code, and that the device still runs slot a untouched. */
export async function assertRefused(device: TestDevice, code: UpdateErrorCode): Promise<void> {
  const slots = new Slots(device.stateDir);
  const before = { boot: slots.readBoot(), counter: slots.counter(), manifest: slots.manifest('a') };
  const { check, agent } = await device.cycle();
  assert.equal(agent.lastError?.code, code, agent.lastError?.message);
  assert.equal(check, 'refused');
  assert.deepEqual(slots.readBoot(), before.boot);
  assert.equal(slots.counter(), before.counter);
  assert.deepEqual(slots.manifest('a'), before.manifest);
  assert.ok(await slots.verify('a'));
  assert.equal(device.reports.at(-1)?.report.errors.at(-1)?.code, code);
}
