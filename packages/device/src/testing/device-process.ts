/**
 * Starts device-main.ts (a device process running the SDK from source) for tests that need a
 * process of its own: to kill it, or to see that it does not crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPOSITORY } from '@bulwark/server/testing';

export interface DeviceProcess {
  child: ChildProcess;
  /** Events printed so far (one JSON object per stdout line). */
  events: Record<string, unknown>[];
  /** Resolves with the first event `match` accepts, rejects if the process ends first. */
  waitFor(match: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** How it ended, with everything it printed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

const ROOT = REPOSITORY;
const MAIN = join(REPOSITORY, 'packages/device/src/testing/device-main.ts');

export function startDeviceProcess(mode: 'hold' | 'ack-full', dir: string, brokerUrl: string): DeviceProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, mode, dir, brokerUrl], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    const lines = stdout.split('\n');
    stdout = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
    waiters.forEach((wake) => wake());
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  const waitFor = (match: (event: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = events.find(match);
        if (found) resolve(found);
      };
      waiters.push(check);
      check();
      void exited.then(({ code, signal }) =>
        reject(new Error(`the device process ended (code ${code}, signal ${signal}) before the event: ${stderr}`)),
      );
    });
  return { child, events, waitFor, exited };
}
