/**
 * Rollouts, in two parts.
 *
 * Director throughput: per-device targets metadata signed per second by the platform's director
 * (building the TUF document with @tufjs/models, canonical JSON, the organization's online
 * Ed25519 key), beside a bare Ed25519 signature over a document of the same size in the same run,
 * alternating rounds so both see the same machine load.
 *
 * A fleet through one rollout (unless --devices 0): N devices, each with its own certificate,
 * MQTT connection and agent state (the simulator's update fleet, in a child process so this
 * process's CPU is the platform's own), taken through one phase at 100 % of a signed release:
 * wall time from the rollout's creation until every device runs the new image and the rollout
 * completed, and the platform process's CPU time meanwhile. Beside it the baseline, in the same
 * run: the same devices each fetching the same image bytes once over plain node:https with mutual
 * TLS (one connection each, as the agent makes one for its whole update) from a bare server in this
 * process. Beside the CPU, the HTTPS requests and TLS handshakes (full or resumed) each server saw
 * per device, and what the platform spends with the fleet connected and idle (5 s before the rollout).
 *
 * With --queries, the database round trips the platform made during the rollout are counted
 * (per device, and the most frequent statements): the wrapping costs a little CPU of its own,
 * so compare CPU figures between runs that both have it or both lack it. With --profile FILE, a CPU
 * profile of the platform process during the rollout is written to FILE (open it in Chrome's DevTools).
 *
 *   npm run bench:rollout -- [--duration 3] [--rounds 3] [--devices 200] [--concurrency 50] [--image-kb 256] [--queries] [--profile FILE]
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { canonicalize } from '@tufjs/canonical-json';
import type { DirectorAssignment, DirectorDevice } from '../packages/server/src/updates/director.js';
import { MAX_SELECTOR_ENTRIES } from '../packages/server/src/updates/rollout-model.js';
import { fleetRollout } from './support/fleet-rollout.js';
import { machine, median, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    devices: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '50' },
    'image-kb': { type: 'string', default: '256' },
    queries: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const duration = Number(values.duration) * 1000;
const rounds = Number(values.rounds);
if (!(duration > 0) || !Number.isInteger(rounds) || rounds < 1)
  throw new Error('--duration must be positive seconds and --rounds a positive integer');
const fleetSize = Number(values.devices);
const concurrency = Number(values.concurrency);
const imageKb = Number(values['image-kb']);
if (!Number.isInteger(fleetSize) || fleetSize < 0 || fleetSize > MAX_SELECTOR_ENTRIES)
  throw new Error(`--devices must be an integer from 0 (no fleet part) to ${MAX_SELECTOR_ENTRIES}`);
if (!Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(imageKb) || imageKb < 1)
  throw new Error('--concurrency and --image-kb must be positive integers');

const bench = await startBenchPlatform({ postgres: false });
try {
  const director = bench.platform.updates.director;
  const assignment: DirectorAssignment = {
    rolloutId: 'r'.repeat(26),
    targetName: `${'p'.repeat(26)}/firmware-1.4.0.bin`,
    sha256: createHash('sha256').update('image').digest('hex'),
    length: 4_194_304,
  };
  const deviceOf = (i: number): DirectorDevice => ({
    id: `device-${i.toString().padStart(20, '0')}`,
    organizationId: bench.admin.organizationId,
    hardwareId: 'hw-rev-b',
  });
  const sample = await director.signFor(deviceOf(0), assignment);
  const signedPart = Buffer.from(canonicalize(sample.metadata.signed as Record<string, unknown>));
  const { privateKey } = generateKeyPairSync('ed25519');

  async function directorRate(): Promise<number> {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < duration) {
      await director.signFor(deviceOf(n), assignment, n + 1);
      n++;
    }
    return n / ((performance.now() - start) / 1000);
  }
  function bareRate(): number {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < duration) {
      sign(null, signedPart, privateKey);
      n++;
    }
    return n / ((performance.now() - start) / 1000);
  }

  console.log(
    `director metadata signing: ${machine()}; ${rounds} rounds of ${values.duration} s; signed document ${signedPart.length} bytes; load average ${loadavg()[0]!.toFixed(2)} at start`,
  );
  const bare: number[] = [];
  const signed: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(bareRate());
    signed.push(await directorRate());
  }
  const rows = bare.map((b, i) => [`round ${i + 1}`, b, signed[i]!, signed[i]! / b]);
  rows.push(['median', median(bare), median(signed), median(signed) / median(bare)]);
  table(['', 'bare ed25519 sign/s (1 thread)', 'director metadata/s (1 thread)', 'ratio'], rows);
  if (fleetSize > 0)
    await fleetRollout(bench, {
      devices: fleetSize,
      concurrency,
      imageBytes: imageKb * 1024,
      countQueries: values.queries,
      ...(values.profile ? { profile: values.profile } : {}),
    });
} finally {
  await bench.close();
}
