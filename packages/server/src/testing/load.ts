/**
 * Overload tests' side of the MQTT load generator (bench/support/mqtt-load.ts): runs it in its
 * own process (on two cores a generator in the broker's process would starve the broker and
 * measure itself), reads back its report and the acknowledged sequence numbers, and samples the
 * broker process while it runs.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPOSITORY } from './repository.js';
import type { LoadJob, LoadReport } from '../../../../bench/support/mqtt-load.js';

const ROOT = REPOSITORY;

export type { LoadJob, LoadReport };

export interface LoadResult {
  report: LoadReport;
  /** Acknowledged seq numbers per device ID (when the job asked for them). */
  acked: Map<string, number[]>;
}

/** Runs one load job in a child process; `dir` holds the job and ack files (mode 0600: device keys). */
export function runLoad(job: Omit<LoadJob, 'ackFile'>, dir: string, name: string): Promise<LoadResult> {
  const file = join(dir, `${name}-job.json`);
  const ackFile = join(dir, `${name}-acked.json`);
  writeFileSync(file, JSON.stringify({ ...job, ackFile }), { mode: 0o600 });
  const limit = (job.seconds + (job.grace ?? 10) + 60) * 1000;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'bench/support/mqtt-load.ts', file],
      { cwd: ROOT, maxBuffer: 1 << 20, timeout: limit },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`load generator failed: ${stderr || error.message}`));
        const report = JSON.parse(stdout.trim().split('\n').pop()!) as LoadReport;
        const acked = new Map(Object.entries(JSON.parse(readFileSync(ackFile, 'utf8')) as Record<string, number[]>));
        resolve({ report, acked });
      },
    );
  });
}

/** Calls `sample` every `ms` until stopped; returns the stop function. */
export function sampler(ms: number, sample: () => void): () => void {
  sample();
  const timer = setInterval(sample, ms);
  return () => {
    clearInterval(timer);
    sample();
  };
}
