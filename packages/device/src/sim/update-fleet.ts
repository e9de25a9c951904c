/**
 * The simulator's update mode: each simulated device runs the real update agent in this process,
 * over its own state directory (factory image in slot a), its own key and certificate, and its own
 * mutual-TLS MQTT connection (the SDK's DeviceClient) for statuses and signed version reports. On
 * `updates/available` it checks, downloads, installs and "reboots" (a new agent over the same
 * state); a deterministic fraction of the fleet fails its health check, so the agent rolls back by
 * itself. Progress counts the devices by the last state each one reported.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UPDATE_STATES } from '@bulwark/protocol';
import { DeviceClient } from '../client.js';
import { UpdateAgent, type AgentOptions, type BootOutcome, type CheckOutcome } from '../updates/agent.js';
import { mqttUpdateChannel, onUpdatesAvailable } from '../updates/mqtt-channel.js';
import { provisionAgentState, type ProvisionOptions } from '../updates/provision.js';
import { Slots, type SlotName } from '../updates/slots.js';
import { inBatches } from './batches.js';

/** What the factory writes into every device: the roots it trusts and its first image (provisionAgentState's input, per device directory aside). */
export type FactoryImage = Omit<ProvisionOptions, 'stateDir'>;

export interface FleetIdentity {
  deviceId: string;
  /** PEM. */
  key: string;
  cert: string;
}

export interface UpdateFleetOptions {
  apiUrl: string;
  brokerUrl: string | readonly string[];
  /** The deployment root (PEM). */
  ca: string;
  organizationId: string;
  hardwareId: string;
  identities: FleetIdentity[];
  /** Each device's agent state goes in `<stateRoot>/<deviceId>`. */
  stateRoot: string;
  factory: FactoryImage;
  /** Fraction (0 … 1) of the devices whose health check fails, spread evenly by index (see failsHealth). */
  failHealth?: number;
  /** Devices connecting at the same time (default 50). */
  connectConcurrency?: number;
  /** Devices running an update at the same time in this process (default 50). */
  updateConcurrency?: number;
  /** HTTPS and acknowledgement timeouts of each agent (default 30 s). */
  timeoutMs?: number;
}

/** A simulated device's last reported state: `idle` (no update under way yet) and the device update states. */
export const FLEET_STATES = ['idle', ...UPDATE_STATES] as const;
export type FleetDeviceState = (typeof FLEET_STATES)[number];

export interface FleetProgress {
  devices: number;
  connected: number;
  /** Devices with an update under way or waiting for a turn. */
  busy: number;
  /** Devices by the last state they reported. */
  states: Record<FleetDeviceState, number>;
  /** Checks that ended refused or failed, and devices that could not run (first ones kept). */
  errors: number;
  failures: string[];
}

/** What a device's own state directory says it runs (what a technician would read off it). */
export interface DeviceOnDisk {
  deviceId: string;
  activeSlot: SlotName;
  version: string | null;
  sha256: string | null;
  /** A trial image this device rolled back from (the agent remembers it so as not to install it again). */
  rejected: boolean;
}

/**
 * Whether device `index` fails its health check for a fleet fraction: exactly
 * floor(n × fraction) of the first n devices fail, spread evenly (0.2: indices 4, 9, 14, …).
 */
export function failsHealth(index: number, fraction: number): boolean {
  return Math.floor((index + 1) * fraction) > Math.floor(index * fraction);
}

const MAX_FAILURES_KEPT = 20;
/** A trial that fails rolls back on the next boot; more reboots than this in a row means the simulator is broken. */
const MAX_BOOTS = 4;

class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export class SimulatedUpdateDevice {
  state: FleetDeviceState = 'idle';
  readonly boots: BootOutcome[] = [];
  readonly checks: CheckOutcome[] = [];
  readonly client: DeviceClient;
  readonly stateDir: string;
  private agent: UpdateAgent | null = null;
  private readonly options: AgentOptions;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    readonly identity: FleetIdentity,
    readonly failsHealthCheck: boolean,
    fleet: UpdateFleetOptions,
    private readonly lanes: Semaphore,
    private readonly fail: (what: string) => void,
  ) {
    this.stateDir = join(fleet.stateRoot, identity.deviceId);
    provisionAgentState({ stateDir: this.stateDir, ...fleet.factory });
    const timeoutMs = fleet.timeoutMs ?? 30_000;
    this.client = new DeviceClient({
      brokerUrl: fleet.brokerUrl,
      deviceId: identity.deviceId,
      ca: fleet.ca,
      credentials: { type: 'certificate', key: identity.key, cert: identity.cert },
      backoff: { baseMs: 500, capMs: 10_000 },
    });
    const channel = mqttUpdateChannel(this.client, timeoutMs);
    this.options = {
      stateDir: this.stateDir,
      deviceId: identity.deviceId,
      hardwareId: fleet.hardwareId,
      organizationId: fleet.organizationId,
      baseUrl: fleet.apiUrl,
      tls: { ca: fleet.ca, cert: identity.cert, key: identity.key },
      channel: {
        status: (status) => {
          this.state = status.state;
          return channel.status(status);
        },
        report: (report) => channel.report(report),
      },
      timeoutMs,
      healthTimeoutMs: timeoutMs,
      ...(failsHealthCheck
        ? {
            healthCheck: () => Promise.reject(new Error('simulated health check failure (the new image does not come up)')),
          }
        : {}),
    };
    onUpdatesAvailable(this.client, () => this.hint());
  }

  /** The first boot, from the factory image. */
  async boot(): Promise<void> {
    this.agent = await this.bootLoop();
  }

  /** An `updates/available` hint: one check now, or one more after the one under way. */
  hint(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.lanes
      .run(async () => {
        do {
          this.again = false;
          await this.update();
        } while (this.again);
      })
      .catch((error: unknown) => this.fail(`${this.identity.deviceId}: ${(error as Error).message}`))
      .finally(() => {
        this.running = null;
      });
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves when no update is under way. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  onDisk(): DeviceOnDisk {
    const slots = new Slots(this.stateDir);
    const activeSlot = slots.readBoot().active;
    const manifest = slots.manifest(activeSlot);
    return {
      deviceId: this.identity.deviceId,
      activeSlot,
      version: manifest?.version ?? null,
      sha256: manifest?.sha256 ?? null,
      rejected: existsSync(join(this.stateDir, 'rejected.json')),
    };
  }

  private async update(): Promise<void> {
    if (!this.agent) this.agent = await this.bootLoop();
    const outcome = await this.agent.check();
    this.checks.push(outcome);
    if (outcome === 'refused' || outcome === 'failed')
      this.fail(`${this.identity.deviceId}: check ${outcome}: ${this.agent.lastError?.code} ${this.agent.lastError?.message}`);
    if (outcome === 'reboot') this.agent = await this.bootLoop();
  }

  /** Starts agents over the state directory until one runs (a failed trial asks for the reboot that rolls back). */
  private async bootLoop(): Promise<UpdateAgent> {
    for (let i = 0; i < MAX_BOOTS; i++) {
      const agent = new UpdateAgent(this.options);
      const outcome = await agent.start();
      this.boots.push(outcome);
      if (outcome !== 'reboot') return agent;
    }
    throw new Error(`still asking for a reboot after ${MAX_BOOTS} boots`);
  }
}

/** A fleet of simulated devices with update agents; `start()` provisions, boots and connects them. */
export class UpdateFleet {
  readonly devices: SimulatedUpdateDevice[];
  private readonly failures: string[] = [];
  private errors = 0;

  constructor(private readonly options: UpdateFleetOptions) {
    const lanes = new Semaphore(options.updateConcurrency ?? 50);
    this.devices = options.identities.map(
      (identity, i) =>
        new SimulatedUpdateDevice(identity, failsHealth(i, options.failHealth ?? 0), options, lanes, (what) => this.fail(what)),
    );
  }

  private fail(what: string): void {
    this.errors++;
    if (this.failures.length < MAX_FAILURES_KEPT) this.failures.push(what);
  }

  /** Boots every device from its factory image and connects it (the boot's version report waits in the client's queue). */
  async start(): Promise<void> {
    await inBatches(this.devices, this.options.connectConcurrency ?? 50, async (device) => {
      await device.boot();
      await device.client.connect().catch((error: Error) => this.fail(`${device.identity.deviceId}: ${error.message}`));
    });
  }

  progress(): FleetProgress {
    const states = Object.fromEntries(FLEET_STATES.map((s) => [s, 0])) as Record<FleetDeviceState, number>;
    let connected = 0;
    let busy = 0;
    for (const device of this.devices) {
      states[device.state]++;
      if (device.client.stats.connects > 0 && !device.client.failure) connected++;
      if (device.busy) busy++;
    }
    return { devices: this.devices.length, connected, busy, states, errors: this.errors, failures: [...this.failures] };
  }

  /** Resolves when no device has an update under way. */
  async idle(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.idle()));
  }

  async stop(): Promise<void> {
    await this.idle();
    await Promise.all(this.devices.map((d) => d.client.stop()));
  }
}
