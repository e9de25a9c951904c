/**
 * Director throughput: per-device targets metadata signed per second by the platform's director
 * (building the TUF document with @tufjs/models, canonical JSON, the organization's online
 * Ed25519 key), beside a bare Ed25519 signature over a document of the same size in the same run,
 * alternating rounds so both see the same machine load.
 *
 *   npm run bench:rollout -- [--duration 3] [--rounds 3]
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { canonicalize } from '@tufjs/canonical-json';
import type { DirectorAssignment, DirectorDevice } from '../packages/server/src/updates/director.js';
import { machine, median, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' } } });
const duration = Number(values.duration) * 1000;
const rounds = Number(values.rounds);
if (!(duration > 0) || !Number.isInteger(rounds) || rounds < 1) throw new Error('--duration must be positive seconds and --rounds a positive integer');

const bench = await startBenchPlatform({ postgres: false });
try {
  const director = bench.platform.updates.director;
  const assignment: DirectorAssignment = {
    rolloutId: 'r'.repeat(26),
    targetName: `${'p'.repeat(26)}/firmware-1.4.0.bin`,
    sha256: createHash('sha256').update('image').digest('hex'),
    length: 4_194_304,
  };
  const deviceOf = (i: number): DirectorDevice => ({ id: `device-${i.toString().padStart(20, '0')}`, organizationId: bench.admin.organizationId, hardwareId: 'hw-rev-b' });
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

  console.log(`director metadata signing: ${machine()}; ${rounds} rounds of ${values.duration} s; signed document ${signedPart.length} bytes; load average ${loadavg()[0]!.toFixed(2)} at start`);
  const bare: number[] = [];
  const signed: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(bareRate());
    signed.push(await directorRate());
  }
  const rows = bare.map((b, i) => [`round ${i + 1}`, b, signed[i]!, signed[i]! / b]);
  rows.push(['median', median(bare), median(signed), median(signed) / median(bare)]);
  table(['', 'bare ed25519 sign/s (1 thread)', 'director metadata/s (1 thread)', 'ratio'], rows);
} finally {
  await bench.close();
}
