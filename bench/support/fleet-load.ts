/**
 * The device side of bench:rollout's fleet part, in its own process so the platform's CPU figure
 * is its own. Mode `agents`: the simulator's update fleet (the real agent per device, own MQTT
 * connection and state directory) boots and connects, prints `ready`, and after `go` on stdin
 * waits until every device runs the new image, then disconnects after `stop` (or the end of stdin). Mode `bare` (the baseline): after `go`, each
 * device fetches the image once over plain node:https with its own certificate (mutual TLS, one
 * connection each, as the agent makes one for a whole update). Both print `done <json>` and exit.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { inBatches } from '../../packages/device/src/sim/batches.js';
import { UpdateFleet, type FleetIdentity } from '../../packages/device/src/sim/update-fleet.js';

export interface FleetJob {
  mode: 'agents' | 'bare';
  apiUrl: string;
  brokerUrl: string;
  ca: string;
  organizationId: string;
  hardwareId: string;
  identities: FleetIdentity[];
  stateRoot: string;
  /** Base64 of the factory fields that are bytes. */
  factory: {
    repositoryRoot: string;
    directorRoot: string;
    productId: string;
    image: string;
    target: string;
    version: string;
    securityVersion: number;
  };
  /** Mode bare: the image's URL on the bare server. */
  imageUrl?: string;
  concurrency: number;
  timeoutSeconds: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetJob;
const lines = createInterface({ input: process.stdin });
const commands = lines[Symbol.asyncIterator]();
/** The next line on stdin (`go`, then in mode agents `stop`), or the end of stdin. */
const next = async () => void (await commands.next());
const go = next();

function fetchOnce(url: string, identity: FleetIdentity): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: job.ca, cert: identity.cert, key: identity.key, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

if (job.mode === 'bare') {
  process.stdout.write('ready\n');
  await go;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let failures = 0;
  let bytes = 0;
  await inBatches(job.identities, job.concurrency, async (identity) => {
    try {
      bytes += await fetchOnce(job.imageUrl!, identity);
    } catch {
      failures++;
    }
  });
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `done ${JSON.stringify({ seconds: (performance.now() - start) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, failures, bytes })}\n`,
  );
  process.exit(0);
}

const fleet = new UpdateFleet({
  apiUrl: job.apiUrl,
  brokerUrl: job.brokerUrl,
  ca: job.ca,
  organizationId: job.organizationId,
  hardwareId: job.hardwareId,
  identities: job.identities,
  stateRoot: job.stateRoot,
  factory: {
    ...job.factory,
    repositoryRoot: Buffer.from(job.factory.repositoryRoot, 'base64'),
    directorRoot: Buffer.from(job.factory.directorRoot, 'base64'),
    image: Buffer.from(job.factory.image, 'base64'),
  },
  updateConcurrency: job.concurrency,
  timeoutMs: 60_000,
});
await fleet.start();
process.stdout.write(`ready ${JSON.stringify({ connected: fleet.progress().connected })}\n`);
await go;
const start = performance.now();
const cpu0 = process.cpuUsage();
const deadline = Date.now() + job.timeoutSeconds * 1000;
let last = 0;
for (;;) {
  const progress = fleet.progress();
  const finished = progress.states.succeeded + progress.states.failed + progress.states.rolled_back;
  if ((finished === progress.devices && progress.busy === 0) || Date.now() > deadline) break;
  if (Date.now() - last > 5000) {
    last = Date.now();
    process.stderr.write(`  fleet: ${JSON.stringify(progress.states)}\n`);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const seconds = (performance.now() - start) / 1000;
const progress = fleet.progress();
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `done ${JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, states: progress.states, errors: progress.errors, failures: progress.failures.slice(0, 5) })}\n`,
);
// The fleet stays connected until told: its disconnects are not part of the rollout measured.
await next();
await fleet.stop();
process.exit(0);
