/**
 * `bulwark-sim --updates`: registers N devices through the operator API (each its own key and
 * certificate, as in the telemetry mode), provisions each one's agent state as a factory would
 * (the organization's image repository and director roots, given as files, and a first image),
 * connects them, and lets the update fleet (update-fleet.ts) take whatever rollout reaches them.
 * Ends once every device has finished an update (succeeded, rolled back or failed) or after
 * `durationSeconds`; `ok` is false when a device never connected or an update check went wrong.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperatorApi } from './operator-api.js';
import { provision } from './run.js';
import { FLEET_STATES, UpdateFleet, type FleetDeviceState } from './update-fleet.js';

export interface UpdateSimOptions {
  apiUrl: string;
  /** Default: the API's host on port 8883. */
  brokerUrl?: string | readonly string[];
  ca: string;
  apiKey: string;
  devices: number;
  /** The product the release is for: the devices are registered under it. */
  productId: string;
  organizationId: string;
  hardwareId: string;
  /** The image repository's and the director's root metadata (JSON bytes, from the organization's ceremony). */
  repositoryRoot: Buffer;
  directorRoot: Buffer;
  /** The version of the simulated factory image (default 1.0.0). */
  factoryVersion?: string;
  failHealth?: number;
  durationSeconds: number;
  /** Where the agents' state directories go (default a temporary directory, removed afterwards). */
  stateDir?: string;
  onProgress?: (progress: UpdateSimProgress) => void;
}

export interface UpdateSimProgress {
  phase: 'provisioning' | 'connecting' | 'updating' | 'done';
  devices: number;
  provisioned: number;
  connected: number;
  states: Record<FleetDeviceState, number>;
  errors: number;
  elapsedSeconds: number;
}

export interface UpdateSimSummary extends UpdateSimProgress {
  ok: boolean;
  failures: string[];
}

const FINISHED: FleetDeviceState[] = ['succeeded', 'rolled_back', 'failed'];

/** The simulated factory image: any bytes do, the platform only ever sees their version. */
function factoryImage(version: string): Buffer {
  const seed = createHash('sha256').update(`bulwark-sim factory image ${version}`).digest();
  return Buffer.concat(Array.from({ length: 128 }, () => seed));
}

export async function runUpdateSimulation(options: UpdateSimOptions): Promise<UpdateSimSummary> {
  const started = Date.now();
  const api = new OperatorApi(options.apiUrl, options.ca, options.apiKey);
  const brokerUrl = options.brokerUrl ?? `mqtts://${new URL(options.apiUrl).hostname}:8883`;
  const stateRoot = options.stateDir ?? mkdtempSync(join(tmpdir(), 'bulwark-sim-updates-'));
  const states = Object.fromEntries(FLEET_STATES.map((s) => [s, 0])) as Record<FleetDeviceState, number>;
  const progress: UpdateSimProgress = {
    phase: 'provisioning',
    devices: options.devices,
    provisioned: 0,
    connected: 0,
    states,
    errors: 0,
    elapsedSeconds: 0,
  };
  const failures: string[] = [];
  let fleet: UpdateFleet | null = null;
  const report = () => {
    if (fleet) {
      const now = fleet.progress();
      Object.assign(progress, { connected: now.connected, states: now.states, errors: now.errors });
      failures.splice(0, failures.length, ...now.failures);
    }
    progress.elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;
    options.onProgress?.({ ...progress, states: { ...progress.states } });
  };
  const ticker = setInterval(report, 1000);
  try {
    const version = options.factoryVersion ?? '1.0.0';
    const identities = await provision(
      api,
      options.productId,
      randomBytes(4).toString('hex'),
      options.devices,
      () => progress.provisioned++,
    );
    progress.phase = 'connecting';
    fleet = new UpdateFleet({
      apiUrl: options.apiUrl,
      brokerUrl,
      ca: options.ca,
      organizationId: options.organizationId,
      hardwareId: options.hardwareId,
      identities,
      stateRoot,
      factory: {
        repositoryRoot: options.repositoryRoot,
        directorRoot: options.directorRoot,
        productId: options.productId,
        image: factoryImage(version),
        target: `${options.productId}/firmware-${version}.bin`,
        version,
        securityVersion: 0,
      },
      failHealth: options.failHealth ?? 0,
    });
    await fleet.start();
    progress.phase = 'updating';
    const deadline = started + options.durationSeconds * 1000;
    while (Date.now() < deadline) {
      const now = fleet.progress();
      if (now.busy === 0 && FINISHED.reduce((n, s) => n + now.states[s], 0) === now.devices) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await fleet.idle();
    progress.phase = 'done';
    report();
    if (progress.connected < options.devices)
      failures.push(`${options.devices - progress.connected} of ${options.devices} devices never connected`);
    return { ...progress, ok: progress.errors === 0 && progress.connected === options.devices, failures };
  } catch (error) {
    report();
    failures.push((error as Error).message);
    progress.phase = 'done';
    return { ...progress, errors: progress.errors + 1, ok: false, failures };
  } finally {
    clearInterval(ticker);
    await fleet?.stop();
    api.close();
    if (!options.stateDir) rmSync(stateRoot, { recursive: true, force: true });
  }
}
