/**
 * For the update agent's tests: a provisioned device (identity directory, agent state with a
 * factory image in slot a, both roots from the fixture) and a runner that boots the agent, checks
 * for an update and "reboots" (starts a new agent over the same state) as often as it asks.
 */
import { join } from 'node:path';
import { IdentityStore } from '../identity.js';
import { UpdateAgent, type AgentOptions, type BootOutcome, type CheckOutcome } from '../updates/agent.js';
import type { BootBackendSettings } from '../updates/boot-backend.js';
import { provisionAgentState } from '../updates/provision.js';
import type { SignedVersionReport, UpdateStatus } from '@bulwark/protocol';
import type { UpdateFixture } from './update-fixture.js';
import { testImage } from './update-fixture.js';
import { writeIdentity, type TestPki } from './update-pki.js';

export const HARDWARE = 'hw-rev-b';

export interface TestDevice {
  deviceId: string;
  stateDir: string;
  identityDir: string;
  statuses: UpdateStatus[];
  reports: SignedVersionReport[];
  options: AgentOptions;
  agent(overrides?: Partial<AgentOptions>): UpdateAgent;
  /** Boots (rebooting while asked), checks once, and boots again after an install. */
  cycle(overrides?: Partial<AgentOptions>): Promise<{ boots: BootOutcome[]; check: CheckOutcome; agent: UpdateAgent }>;
}

let devices = 0;

export async function provisionTestDevice(
  fixture: UpdateFixture,
  pki: TestPki,
  dir: string,
  factory = { version: '1.0.0', securityVersion: 0 },
  bootBackend: BootBackendSettings = { kind: 'dir' },
): Promise<TestDevice> {
  const deviceId = `dev-${process.pid}-${++devices}`;
  const identityDir = writeIdentity(join(dir, `${deviceId}-identity`), pki.ca, await pki.device(deviceId));
  const stateDir = join(dir, `${deviceId}-state`);
  provisionAgentState({
    stateDir,
    repositoryRoot: fixture.initialRoot,
    directorRoot: fixture.directorRoot,
    image: testImage(`factory-${factory.version}`),
    target: fixture.targetName(factory.version),
    productId: fixture.productId,
    bootBackend,
    ...factory,
  });
  const identity = new IdentityStore(identityDir).load();
  const statuses: UpdateStatus[] = [];
  const reports: SignedVersionReport[] = [];
  const options: AgentOptions = {
    stateDir,
    deviceId,
    hardwareId: HARDWARE,
    organizationId: fixture.org,
    baseUrl: fixture.baseUrl,
    tls: identity,
    channel: { status: (s) => void statuses.push(s), report: (r) => void reports.push(r) },
    healthTimeoutMs: 2_000,
    download: { idleTimeoutMs: 300, maxAttempts: 3 },
    timeoutMs: 5_000,
  };
  const agent = (overrides: Partial<AgentOptions> = {}) => new UpdateAgent({ ...options, ...overrides });
  const bootLoop = async (boots: BootOutcome[], overrides: Partial<AgentOptions>): Promise<UpdateAgent> => {
    for (;;) {
      const a = agent(overrides);
      const outcome = await a.start();
      boots.push(outcome);
      if (outcome !== 'reboot') return a;
    }
  };
  return {
    deviceId,
    stateDir,
    identityDir,
    statuses,
    reports,
    options,
    agent,
    async cycle(overrides = {}) {
      const boots: BootOutcome[] = [];
      let current = await bootLoop(boots, overrides);
      const check = await current.check();
      if (check === 'reboot') current = await bootLoop(boots, overrides);
      return { boots, check, agent: current };
    },
  };
}
