/**
 * `bulwark-sim`: the simulator's command line. Prints one updating progress line on a terminal
 * (a line every few seconds otherwise) and a final summary; exit 0 when every device connected
 * and every message was acknowledged (with --updates: every update check went as the platform
 * directed), 1 when the run failed, 2 for bad arguments.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runSimulation, type SimProgress, type SimSummary } from './run.js';
import { runUpdateSimulation, type UpdateSimProgress, type UpdateSimSummary } from './update-run.js';

const USAGE = `Usage: bulwark-sim --api https://HOST:8443 --ca ca.pem --api-key KEY --devices N --rate R --duration S [--product ID] [--mqtt mqtts://HOST:8883] [--json]
       bulwark-sim --gateways G --children-per-gateway N --api … --ca … --api-key … --rate R --duration S [--product ID] [--json]
       bulwark-sim --updates --api … --ca … --api-key … --devices N --duration S --product ID --org ID --hardware-id HW
                   --root root.json --director-root director-root.json [--fail-health 0.2] [--factory-version 1.0.0] [--state-dir DIR] [--json]

  --api        the platform's HTTPS address
  --ca         the deployment root (PEM) to trust
  --api-key    an API key with devices:read and devices:write (or env BULWARK_API_KEY)
  --devices    how many devices to simulate (each has its own key, certificate and TLS connection)
  --rate       telemetry messages per second, per device
  --duration   seconds to publish
  --product    product ID to register the devices under (default: a product named "bulwark-sim")
  --mqtt       the broker, or several nodes separated by commas (default: the API's host, port 8883)
  --json       print the summary as JSON
  --gateways   gateway mode: G gateways (instead of --devices), each made a gateway through the API,
               registering --children-per-gateway children over MQTT and publishing for each at --rate

Update mode (--updates): each device runs the update agent over its own state directory (factory
image --factory-version in slot a, the organization's --root and --director-root from its
ceremony), takes the rollouts that reach it (updates/available), reboots into the new image and
commits it, or rolls back by itself when its health check fails. --duration is the most seconds
to wait; the run ends sooner once every device finished an update.
  --fail-health   fraction of devices (0 to 1, spread evenly by index) whose health check fails
  --org           the organization ID (the image repository's path)
  --hardware-id   the hardware revision the devices report`;

export function formatProgress(p: SimProgress): string {
  return `[${p.elapsedSeconds.toFixed(1)}s] ${p.phase}: provisioned ${p.provisioned}/${p.devices}  connected ${p.connected}/${p.devices}  sent ${p.sent}  acked ${p.acked}  errors ${p.errors}  ${p.rate} msg/s`;
}

export function formatUpdateProgress(p: UpdateSimProgress): string {
  const states = Object.entries(p.states)
    .filter(([state, n]) => n > 0 || state === 'succeeded')
    .map(([state, n]) => `${state} ${n}`)
    .join('  ');
  return `[${p.elapsedSeconds.toFixed(1)}s] ${p.phase}: provisioned ${p.provisioned}/${p.devices}  connected ${p.connected}/${p.devices}  ${states}  errors ${p.errors}`;
}

export function formatUpdateSummary(s: UpdateSimSummary): string {
  const states = Object.entries(s.states)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  return [
    `${s.ok ? 'OK' : 'FAILED'}: ${s.devices} devices, ${states}, errors ${s.errors}, ${s.elapsedSeconds}s in all`,
    ...s.failures.map((f) => `  - ${f}`),
  ].join('\n');
}

export function formatSummary(s: SimSummary): string {
  const lines = [
    `${s.ok ? 'OK' : 'FAILED'}: ${s.devices} ${s.children === undefined ? 'devices' : `gateways with ${s.children} children`}, sent ${s.sent}, acked ${s.acked}, errors ${s.errors}, ${s.averageRate} msg/s acknowledged on average, ${s.elapsedSeconds}s in all`,
    ...s.failures.map((f) => `  - ${f}`),
  ];
  return lines.join('\n');
}

/** One updating line on a terminal, a line every five seconds otherwise. */
function progressPrinter<T>(out: NodeJS.WriteStream, format: (p: T) => string): (p: T) => void {
  let lastPlain = 0;
  return (p) => {
    if (out.isTTY) out.write(`\r\x1b[2K${format(p)}`);
    else if (Date.now() - lastPlain >= 5000) {
      lastPlain = Date.now();
      out.write(`${format(p)}\n`);
    }
  };
}

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

export async function main(
  argv: string[],
  out: NodeJS.WriteStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        api: { type: 'string' },
        ca: { type: 'string' },
        'api-key': { type: 'string' },
        devices: { type: 'string' },
        gateways: { type: 'string' },
        'children-per-gateway': { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        product: { type: 'string' },
        mqtt: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
        updates: { type: 'boolean', default: false },
        'fail-health': { type: 'string' },
        org: { type: 'string' },
        'hardware-id': { type: 'string' },
        root: { type: 'string' },
        'director-root': { type: 'string' },
        'factory-version': { type: 'string' },
        'state-dir': { type: 'string' },
      },
      strict: true,
    });
    if (values.help) {
      out.write(`${USAGE}\n`);
      return 0;
    }
    if (!values.api?.startsWith('https://')) throw new Error('--api must be an https:// address');
    if (!values.ca) throw new Error('--ca is required');
    const apiKey = values['api-key'] ?? process.env.BULWARK_API_KEY;
    if (!apiKey) throw new Error('--api-key (or BULWARK_API_KEY) is required');
    const gatewayMode = values.gateways !== undefined;
    const gateways = gatewayMode ? positive('gateways', values.gateways) : 0;
    const childrenPerGateway = gatewayMode ? positive('children-per-gateway', values['children-per-gateway']) : 0;
    if (!Number.isInteger(gateways) || !Number.isInteger(childrenPerGateway))
      throw new Error('--gateways and --children-per-gateway must be whole numbers');
    if (gatewayMode && values.updates) throw new Error('--gateways cannot be combined with --updates');
    const devices = gatewayMode ? gateways : positive('devices', values.devices);
    if (!Number.isInteger(devices)) throw new Error('--devices must be a whole number');
    if (values.updates) {
      const failHealth = values['fail-health'] === undefined ? 0 : Number(values['fail-health']);
      if (!(failHealth >= 0 && failHealth <= 1)) throw new Error('--fail-health must be a fraction from 0 to 1');
      for (const name of ['product', 'org', 'hardware-id', 'root', 'director-root'] as const)
        if (!values[name]) throw new Error(`--${name} is required with --updates`);
      const updateOptions = {
        apiUrl: values.api,
        ca: readFileSync(values.ca, 'utf8'),
        apiKey,
        devices,
        durationSeconds: positive('duration', values.duration),
        productId: values.product!,
        organizationId: values.org!,
        hardwareId: values['hardware-id']!,
        repositoryRoot: readFileSync(values.root!),
        directorRoot: readFileSync(values['director-root']!),
        failHealth,
        ...(values['factory-version'] ? { factoryVersion: values['factory-version'] } : {}),
        ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
        ...(values.mqtt ? { brokerUrl: values.mqtt.split(',') } : {}),
      };
      const summary = await runUpdateSimulation({ ...updateOptions, onProgress: progressPrinter(out, formatUpdateProgress) });
      if (out.isTTY) out.write('\n');
      out.write(`${values.json ? JSON.stringify(summary) : formatUpdateSummary(summary)}\n`);
      return summary.ok ? 0 : 1;
    }
    options = {
      apiUrl: values.api,
      ca: readFileSync(values.ca, 'utf8'),
      apiKey,
      devices,
      rate: positive('rate', values.rate),
      durationSeconds: positive('duration', values.duration),
      json: values.json,
      ...(gatewayMode ? { gateways, childrenPerGateway } : {}),
      ...(values.product ? { productId: values.product } : {}),
      ...(values.mqtt ? { brokerUrl: values.mqtt.split(',') } : {}),
    };
  } catch (error) {
    err.write(`bulwark-sim: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }

  const tty = Boolean(out.isTTY);
  const summary = await runSimulation({ ...options, onProgress: progressPrinter(out, formatProgress) });
  if (tty) out.write('\n');
  out.write(`${options.json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
  return summary.ok ? 0 : 1;
}
