/**
 * `bulwark-sim`: the simulator's command line. Prints one updating progress line on a terminal
 * (a line every few seconds otherwise) and a final summary; exit 0 when every device connected
 * and every message was acknowledged, 1 when the run failed, 2 for bad arguments.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runSimulation, type SimProgress, type SimSummary } from './run.js';

const USAGE = `Usage: bulwark-sim --api https://HOST:8443 --ca ca.pem --api-key KEY --devices N --rate R --duration S [--product ID] [--mqtt mqtts://HOST:8883] [--json]

  --api        the platform's HTTPS address
  --ca         the deployment root (PEM) to trust
  --api-key    an API key with devices:read and devices:write (or env BULWARK_API_KEY)
  --devices    how many devices to simulate (each has its own key, certificate and TLS connection)
  --rate       telemetry messages per second, per device
  --duration   seconds to publish
  --product    product ID to register the devices under (default: a product named "bulwark-sim")
  --mqtt       the broker (default: the API's host, port 8883)
  --json       print the summary as JSON`;

export function formatProgress(p: SimProgress): string {
  return `[${p.elapsedSeconds.toFixed(1)}s] ${p.phase}: provisioned ${p.provisioned}/${p.devices}  connected ${p.connected}/${p.devices}  sent ${p.sent}  acked ${p.acked}  errors ${p.errors}  ${p.rate} msg/s`;
}

export function formatSummary(s: SimSummary): string {
  const lines = [
    `${s.ok ? 'OK' : 'FAILED'}: ${s.devices} devices, sent ${s.sent}, acked ${s.acked}, errors ${s.errors}, ${s.averageRate} msg/s acknowledged on average, ${s.elapsedSeconds}s in all`,
    ...s.failures.map((f) => `  - ${f}`),
  ];
  return lines.join('\n');
}

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

export async function main(argv: string[], out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        api: { type: 'string' },
        ca: { type: 'string' },
        'api-key': { type: 'string' },
        devices: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        product: { type: 'string' },
        mqtt: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
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
    const devices = positive('devices', values.devices);
    if (!Number.isInteger(devices)) throw new Error('--devices must be a whole number');
    options = {
      apiUrl: values.api,
      ca: readFileSync(values.ca, 'utf8'),
      apiKey,
      devices,
      rate: positive('rate', values.rate),
      durationSeconds: positive('duration', values.duration),
      json: values.json,
      ...(values.product ? { productId: values.product } : {}),
      ...(values.mqtt ? { brokerUrl: values.mqtt } : {}),
    };
  } catch (error) {
    err.write(`bulwark-sim: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }

  const tty = Boolean(out.isTTY);
  let lastPlain = 0;
  const summary = await runSimulation({
    ...options,
    onProgress: (p) => {
      if (tty) out.write(`\r\x1b[2K${formatProgress(p)}`);
      else if (Date.now() - lastPlain >= 5000) {
        lastPlain = Date.now();
        out.write(`${formatProgress(p)}\n`);
      }
    },
  });
  if (tty) out.write('\n');
  out.write(`${options.json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
  return summary.ok ? 0 : 1;
}
