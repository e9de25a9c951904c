/**
 * `bulwark-agent`: the update agent's command line.
 *
 *   bulwark-agent setup --state DIR --root root.json --director-root director-root.json --product ID
 *                       --image factory.bin --target NAME --version V [--security-version N]
 *                       [--boot-backend dir|grub|uboot] [--grub-env FILE] [--uboot-config FILE]
 *   bulwark-agent pin   --state DIR --product ID
 *   bulwark-agent tuf-client --metadata-dir DIR … init|refresh|download   (tuf-client.ts)
 *   bulwark-agent run   --state DIR --identity DIR --url https://HOST:PORT --org ORG --hardware HW
 *                       [--once] [--interval SECONDS] [--idle-timeout-ms N] [--health-timeout-ms N]
 *                       [--exit-on-reboot] [--health-command CMD] [--broker mqtts://HOST:8883] [--boot-backend KIND …]
 *
 * `run` boots (the A/B decision and, in a trial boot, the health check), then checks for an update
 * at once and every --interval seconds. When an update is armed it "reboots": by starting the
 * agent again over the same state in this process, or, with --exit-on-reboot, by exiting with
 * code 3 for the service manager to restart it. Each event is printed as one JSON line; with
 * --broker, statuses and signed version reports also go to the platform over the device's MQTT
 * connection, and an `updates/available` hint starts a check at once.
 * `setup` pins the device's product line: the agent installs only images its delegated role signed
 * with that custom.product. `pin` pins it on a state directory set up before products were pinned
 * (until then it installs nothing); a pinned product is never changed. `setup` also chooses where
 * the A/B boot variables live (boot-backend.ts): `dir` (the state directory, the default), `grub`
 * (the GRUB environment block --grub-env, default /boot/grub/grubenv) or `uboot` (the U-Boot
 * environment that --uboot-config names, default /etc/fw_env.config); `run` uses the recorded one,
 * and refuses a --boot-backend that differs from it. With --kernel-cmdline the device was booted by a
 * real bootloader, which marked the trial tried and put the slot it booted in `bulwark.slot=`.
 * Exit codes: 0 done (--once) or stopped, 1 failure, 2 bad arguments, 3 reboot requested.
 *
 * For power-cut tests, BULWARK_AGENT_FAULT=<step> (one of AGENT_STEPS) makes the process SIGKILL
 * itself at that step, as a power cut would stop it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IdentityStore } from '../identity.js';
import { DeviceClient } from '../client.js';
import { AGENT_STEPS, UpdateAgent, type AgentOptions, type AgentStep, type HealthContext, type UpdateChannel } from './agent.js';
import { mqttUpdateChannel, onUpdatesAvailable, type UpdateMessagingClient } from './mqtt-channel.js';
import { BOOT_BACKENDS, recordedBootBackend, type BootBackendKind, type BootBackendSettings, type SlotName } from './boot-backend.js';
import { pinProduct, productIdProblem, provisionAgentState } from './provision.js';
import { tufClientMain } from './tuf-client.js';

export const REBOOT_EXIT_CODE = 3;

/** The device's MQTT connection for the agent (see mqtt-channel.ts); connects in the background and keeps retrying. */
function connectBroker(
  identityDir: string,
  brokerUrl: string,
  ackTimeoutMs: number,
  onAvailable: () => void,
): { client: DeviceClient; channel: UpdateChannel } {
  if (!/^mqtts:\/\//.test(brokerUrl)) throw new UsageError('--broker must be an mqtts:// address');
  const client = DeviceClient.fromIdentity(identityDir, { brokerUrl });
  const messaging = client as unknown as Partial<UpdateMessagingClient>;
  if (typeof messaging.publish !== 'function' || typeof messaging.onTopic !== 'function') {
    throw new UsageError('--broker needs a DeviceClient with publish() and onTopic() (an SDK older than the update agent)');
  }
  client.on('error', (error: Error) => process.stderr.write(`bulwark-agent: the broker refused the connection: ${error.message}\n`));
  onUpdatesAvailable(messaging as UpdateMessagingClient, onAvailable);
  client.connect().catch(() => undefined);
  return { client, channel: mqttUpdateChannel(messaging as UpdateMessagingClient, ackTimeoutMs) };
}

/** A health check that runs a shell command; it passes when the command exits 0. */
function commandHealthCheck(command: string): (context: HealthContext) => Promise<void> {
  return (context) =>
    new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], {
        stdio: 'ignore',
        env: { ...process.env, BULWARK_SLOT: context.slot, BULWARK_VERSION: context.manifest.version },
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`the health command exited with ${signal ?? code}`))));
    });
}

const USAGE = `Usage:
  bulwark-agent setup --state DIR --root root.json --director-root director-root.json --product ID --image factory.bin --target NAME --version V [--security-version N]
                      [--boot-backend dir|grub|uboot] [--grub-env FILE] [--uboot-config FILE]
  bulwark-agent pin --state DIR --product ID
  bulwark-agent tuf-client --metadata-dir DIR [--metadata-url URL …] init ROOT | refresh | download   (the TUF conformance suite's client)
  bulwark-agent run --state DIR --identity DIR --url https://HOST:PORT --org ORG --hardware HW [--once] [--interval SECONDS]
                    [--idle-timeout-ms N] [--health-timeout-ms N] [--exit-on-reboot] [--health-command CMD] [--broker mqtts://HOST:8883]
                    [--boot-backend dir|grub|uboot] [--grub-env FILE] [--uboot-config FILE] [--kernel-cmdline /proc/cmdline]

  --product         the device's product line (setup, pin): only images its delegated role signs are installed;
                    pin sets it once on a state directory set up without one (it installs nothing until then)
  --broker          the platform's MQTT broker: statuses and version reports go there, updates/available triggers a check
  --boot-backend    where the A/B boot variables live, chosen at setup: dir (the state directory, default), grub (the
                    environment block --grub-env, default /boot/grub/grubenv, via grub-editenv) or uboot (the environment
                    --uboot-config names, default /etc/fw_env.config, via fw_setenv); run refuses one that differs from setup's
  --kernel-cmdline  booted by a real bootloader (docs/device-sdk.md): the slot it booted is bulwark.slot= in this file,
                    and a reboot is a real one (exit 3, as --exit-on-reboot). Without it the agent plays the bootloader.

  --health-command  run in the trial boot (sh -c, with BULWARK_SLOT and BULWARK_VERSION set); exit 0 = healthy.
                    Default: the slot's image matches its manifest and the version report goes out.`;

const OPTIONS = {
  state: { type: 'string' },
  root: { type: 'string' },
  'director-root': { type: 'string' },
  product: { type: 'string' },
  image: { type: 'string' },
  target: { type: 'string' },
  version: { type: 'string' },
  'security-version': { type: 'string' },
  identity: { type: 'string' },
  url: { type: 'string' },
  org: { type: 'string' },
  hardware: { type: 'string' },
  once: { type: 'boolean', default: false },
  interval: { type: 'string' },
  'idle-timeout-ms': { type: 'string' },
  'health-timeout-ms': { type: 'string' },
  'exit-on-reboot': { type: 'boolean', default: false },
  'health-command': { type: 'string' },
  broker: { type: 'string' },
  'boot-backend': { type: 'string' },
  'grub-env': { type: 'string' },
  'uboot-config': { type: 'string' },
  'kernel-cmdline': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function count(values: Values, name: keyof Values, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number ≥ 0`);
  return n;
}

export async function main(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const emit = (event: Record<string, unknown>) => out.write(`${JSON.stringify(event)}\n`);
  if (argv[0] === 'tuf-client') return tufClientMain(argv.slice(1), out, err);
  let command: string | undefined;
  let values: Values;
  try {
    const parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    values = parsed.values;
    command = parsed.positionals[0];
    if (values.help || !command) {
      out.write(`${USAGE}\n`);
      return values.help ? 0 : 2;
    }
    if (command === 'setup') return setup(values, emit);
    if (command !== 'run' && command !== 'pin') throw new UsageError(`unknown command ${command}`);
  } catch (error) {
    err.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    if (command === 'pin') return pin(values, emit);
    return await run(values, emit);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    err.write(`bulwark-agent: ${(error as Error).message}\n`);
    return 1;
  }
}

function product(values: Values): string {
  const productId = required(values, 'product');
  const problem = productIdProblem(productId);
  if (problem) throw new UsageError(problem);
  return productId;
}

function setup(values: Values, emit: (event: Record<string, unknown>) => void): number {
  const manifest = provisionAgentState({
    stateDir: required(values, 'state'),
    repositoryRoot: readFileSync(required(values, 'root')),
    directorRoot: readFileSync(required(values, 'director-root')),
    productId: product(values),
    image: readFileSync(required(values, 'image')),
    target: required(values, 'target'),
    version: required(values, 'version'),
    securityVersion: count(values, 'security-version', 0),
    bootBackend: bootBackendOf(values) ?? { kind: 'dir' },
  });
  emit({ event: 'provisioned', slot: 'a', ...manifest });
  return 0;
}

/** The boot backend the options name, or null when --boot-backend is not given. */
function bootBackendOf(values: Values): BootBackendSettings | null {
  const kind = values['boot-backend'];
  if (kind === undefined) return null;
  if (!BOOT_BACKENDS.includes(kind as BootBackendKind)) throw new UsageError(`--boot-backend must be one of ${BOOT_BACKENDS.join(', ')}`);
  if (kind === 'grub') return { kind, envFile: values['grub-env'] ?? '/boot/grub/grubenv' };
  if (kind === 'uboot') return { kind, config: values['uboot-config'] ?? '/etc/fw_env.config' };
  return { kind: 'dir' };
}

/** The slot the bootloader booted, from `bulwark.slot=` in the kernel command line file (e.g. /proc/cmdline). */
function bootedSlotIn(file: string): SlotName {
  const slot = /(?:^|\s)bulwark\.slot=([ab])(?:\s|$)/.exec(readFileSync(file, 'utf8'))?.[1];
  if (!slot) throw new UsageError(`${file} has no bulwark.slot=a or bulwark.slot=b: boot with the bootloader script of docs/device-sdk.md`);
  return slot as SlotName;
}

/** `run` boots with the backend recorded at setup; one named on its command line must be that one. */
function checkBootBackend(values: Values, stateDir: string): void {
  const named = bootBackendOf(values);
  const recorded = recordedBootBackend(stateDir);
  if (named && JSON.stringify(named) !== JSON.stringify(recorded)) {
    throw new UsageError(
      `--boot-backend ${JSON.stringify(named)} differs from the one ${stateDir} was set up with (${JSON.stringify(recorded)})`,
    );
  }
}

function pin(values: Values, emit: (event: Record<string, unknown>) => void): number {
  const productId = product(values);
  pinProduct(required(values, 'state'), productId);
  emit({ event: 'pinned', productId });
  return 0;
}

async function run(values: Values, emit: (event: Record<string, unknown>) => void): Promise<number> {
  const url = required(values, 'url');
  if (!url.startsWith('https://')) throw new UsageError('--url must be an https:// address');
  const identityDir = required(values, 'identity');
  const identity = new IdentityStore(identityDir).load();
  checkBootBackend(values, required(values, 'state'));
  const bootedSlot = values['kernel-cmdline'] === undefined ? undefined : bootedSlotIn(values['kernel-cmdline']);
  // Booted by a real bootloader, a reboot must be a real one: the service manager reboots on exit code 3.
  const exitOnReboot = values['exit-on-reboot'] || bootedSlot !== undefined;
  const fault = process.env.BULWARK_AGENT_FAULT as AgentStep | undefined;
  if (fault && !AGENT_STEPS.includes(fault)) throw new UsageError(`BULWARK_AGENT_FAULT must be one of ${AGENT_STEPS.join(', ')}`);
  const options: AgentOptions = {
    stateDir: required(values, 'state'),
    deviceId: identity.deviceId,
    hardwareId: required(values, 'hardware'),
    organizationId: required(values, 'org'),
    baseUrl: url,
    tls: identity,
    channel: {
      status: (status) => {
        emit({ event: 'status', ...status });
        return mqtt?.channel.status(status);
      },
      report: (signed) => {
        emit({ event: 'report', ...signed });
        return mqtt?.channel.report(signed);
      },
    },
    healthTimeoutMs: count(values, 'health-timeout-ms', 30_000),
    ...(values['health-command'] ? { healthCheck: commandHealthCheck(values['health-command']) } : {}),
    download: { idleTimeoutMs: count(values, 'idle-timeout-ms', 30_000) },
    ...(bootedSlot ? { bootedSlot } : {}),
    onStep: (step) => {
      emit({ event: 'step', step });
      if (step === fault) process.kill(process.pid, 'SIGKILL');
    },
  };
  const intervalMs = count(values, 'interval', 3600) * 1000;
  let stopping = false;
  let wake = () => undefined as void;
  const mqtt = values.broker ? connectBroker(identityDir, values.broker, options.healthTimeoutMs ?? 30_000, () => wake()) : null;
  try {
    return await loop();
  } finally {
    await mqtt?.client.stop();
  }

  async function loop(): Promise<number> {
    process.once('SIGTERM', () => {
      stopping = true;
      wake();
    });

    /** Boots until a boot does not ask for another (a failed trial reboots into the rollback). */
    const boot = async (): Promise<UpdateAgent | null> => {
      for (;;) {
        const agent = new UpdateAgent(options);
        const outcome = await agent.start();
        emit({ event: 'boot', outcome, slot: agent.slot });
        if (outcome !== 'reboot') return agent;
        if (exitOnReboot) return null;
      }
    };

    let agent = await boot();
    if (!agent) return REBOOT_EXIT_CODE;
    while (!stopping) {
      const outcome = await agent.check();
      emit({
        event: 'check',
        outcome,
        ...(agent.lastError && outcome !== 'up_to_date' && outcome !== 'reboot'
          ? { error: { code: agent.lastError.code, message: agent.lastError.message } }
          : {}),
      });
      if (outcome === 'reboot') {
        if (exitOnReboot) return REBOOT_EXIT_CODE;
        agent = await boot();
        if (!agent) return REBOOT_EXIT_CODE;
        continue;
      }
      if (values.once) return 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return 0;
  }
}
