import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { bundleAgent } from '../testing/agent-bundle.js';
import { tempDir } from '../testing/temp.js';
import { freshBootEnvironment } from '../testing/update-boot.js';
import { HARDWARE, provisionTestDevice, type TestDevice } from '../testing/update-device.js';
import { sha256, testImage, UpdateFixture } from '../testing/update-fixture.js';
import { makeTestPki, type TestPki } from '../testing/update-pki.js';
import { AGENT_STEPS, type AgentStep } from './agent.js';
import { BOOT_BACKENDS } from './boot-backend.js';
import { Slots } from './slots.js';

/** The CLI, bundled once per file (starting tsx for each of the dozen runs would dominate the test). */
let agentMain: { path: string; remove(): void };

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  events: Record<string, unknown>[];
  stderr: string;
}

/** Runs `bulwark-agent run --once` as a child process, optionally with a power cut at `fault`. */
function runAgent(fixture: UpdateFixture, device: TestDevice, fault?: AgentStep): Promise<Run> {
  const args = [agentMain.path, 'run', '--once'];
  args.push(
    '--state',
    device.stateDir,
    '--identity',
    device.identityDir,
    '--url',
    fixture.baseUrl,
    '--org',
    fixture.org,
    '--hardware',
    HARDWARE,
  );
  args.push('--idle-timeout-ms', '2000', '--health-timeout-ms', '5000');
  const env = { ...process.env, ...(fault ? { BULWARK_AGENT_FAULT: fault } : {}) };
  if (!fault) delete env.BULWARK_AGENT_FAULT;
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stderr,
        events: stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      }),
    );
  });
}

/** What the bootloader would boot is a complete image matching its manifest, never a half-written slot. */
async function assertBootsGoodImage(device: TestDevice): Promise<void> {
  const slots = new Slots(device.stateDir);
  const boot = slots.readBoot();
  assert.ok(await slots.verify(boot.active), `active slot ${boot.active} does not match its manifest`);
  if (boot.trial) assert.ok(await slots.verify(boot.trial.slot), `trial slot ${boot.trial.slot} does not match its manifest`);
}

describe('update agent: power cut at each step', () => {
  let pki: TestPki;
  let fixture: UpdateFixture;
  const temp = tempDir('power-cut');

  before(async () => {
    agentMain = await bundleAgent();
    pki = await makeTestPki();
    fixture = await UpdateFixture.start(pki);
    fixture.addRelease({ version: '1.1.0', securityVersion: 4, hardwareIds: [HARDWARE], image: testImage('1.1.0', 600_000) });
  });
  after(async () => {
    await fixture.close();
    temp.remove();
    agentMain.remove();
  });

  /** A cut before the trial boot completes the update; a cut inside the uncommitted trial boot rolls back. */
  const expected: Record<AgentStep, 'completed' | 'rolled_back'> = {
    download: 'completed',
    downloaded: 'completed',
    'slot-write': 'completed',
    'trial-set': 'completed',
    'trial-boot': 'rolled_back',
    committed: 'completed',
  };

  for (const kind of BOOT_BACKENDS)
    for (const step of AGENT_STEPS) {
      it(`${kind} boot backend: boots a good image after a power cut at "${step}" and then ${expected[step] === 'completed' ? 'completes the update' : 'rolls back'}`, async () => {
        const device = await provisionTestDevice(fixture, pki, temp.dir, undefined, freshBootEnvironment(kind, temp.dir));
        const release = fixture.releases[0]!;
        const rolloutId = `r-${kind}-${step}`;
        fixture.direct(device.deviceId, release, { hardwareId: HARDWARE, rolloutId });

        const cut = await runAgent(fixture, device, step);
        assert.equal(cut.signal, 'SIGKILL', `the agent was not cut at ${step}: exit ${cut.code} ${cut.stderr}`);
        assert.deepEqual(cut.events.at(-1), { event: 'step', step });
        await assertBootsGoodImage(device);

        const restarted = await runAgent(fixture, device);
        assert.equal(restarted.code, 0, restarted.stderr);
        await assertBootsGoodImage(device);
        const slots = new Slots(device.stateDir);
        const boot = slots.readBoot();
        assert.equal(boot.trial, null);
        if (expected[step] === 'completed') {
          const succeeded = [...cut.events, ...restarted.events].filter(
            (e) => e.event === 'status' && e.state === 'succeeded' && e.rolloutId === rolloutId,
          );
          assert.equal(succeeded.length, 1, 'the platform hears of the success exactly once');
          assert.equal(boot.active, 'b');
          assert.equal(slots.manifest('b')?.sha256, sha256(release.image));
          assert.equal(slots.counter(), 4);
        } else {
          assert.equal(boot.active, 'a');
          assert.equal(slots.manifest('a')?.version, '1.0.0');
          assert.equal(slots.counter(), 0);
          assert.ok(restarted.events.some((e) => e.event === 'status' && e.state === 'rolled_back' && e.rolloutId === rolloutId));
        }
        if (step === 'download') {
          const ranged = fixture.served(fixture.imagePath(release)).filter((r) => r.deviceId === device.deviceId && r.range);
          assert.equal(ranged.length, 1, 'the restarted download resumed with a range request');
          assert.equal(ranged[0]!.status, 206);
        }
      });
    }
});
