/**
 * A platform node in a process of its own, for tests that measure the server apart from their
 * clients: a data directory made here (`initialize`, devices provisioned through the platform,
 * then closed), then `bulwark serve` as a child process on ephemeral ports, its memory read from
 * /proc (resident set now, and the kernel's high-water mark).
 */
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { startCli } from './cli.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from './devices.js';

export interface ServerProcess {
  child: ChildProcess;
  httpsPort: number;
  mqttPort: number;
  ca: string;
  /** Lines the server logged (standard output and error). */
  logLines(): number;
  /** What it logged (the first 100,000 characters). */
  output(): string;
  /** What it wrote until it listened (standard output and error, at most 100,000 characters). */
  startOutput: string;
  /** Resident set size now, and its peak since the process started (bytes). */
  memory(): { rss: number; peak: number };
  /** SIGTERM, then the exit code (null if it had to be killed after `ms`). */
  stop(ms?: number): Promise<number | null>;
}

/** A data directory with `devices` provisioned; `remove` deletes it. */
export async function prepareDataDir(
  devices: number,
  serialPrefix: string,
): Promise<{
  dataDir: string;
  ca: string;
  devices: TestDevice[];
  /** The organization's slug and its owner as `bulwark init` made them (one-time password). */
  org: string;
  owner: { email: string; oneTimePassword: string };
  remove(): void;
}> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-proc-'));
  const config = loadConfig({ dataDir, env: {}, overrides: { log: { level: 'silent' } } });
  const init = await initialize(config, DEFAULT_INIT, { env: {} });
  const platform = await openPlatform(config, { env: {} });
  const list: TestDevice[] = [];
  try {
    const org = await organizationIdOf(platform, init.organization.slug);
    const product = await testProduct(platform, org);
    for (let i = 0; i < devices; i++) list.push(await provisionTestDevice(platform, org, product, `${serialPrefix}-${i}`));
  } finally {
    await platform.close();
  }
  return {
    dataDir,
    ca: readFileSync(init.caCertPath, 'utf8'),
    devices: list,
    org: init.organization.slug,
    owner: init.owner!,
    remove: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

const MQTT_LINE = /device broker \(MQTT over mutual TLS\) listening on mqtts:\/\/[^:]+:(\d+)/;
const HTTPS_LINE = /Bulwark API listening on https:\/\/[^:]+:(\d+)/;

/** Starts `bulwark serve` on the data directory; `env` adds BULWARK_* settings, `args` more options (`--workers 2`). */
export async function startServerProcess(
  dataDir: string,
  ca: string,
  env: Record<string, string> = {},
  listenTimeoutMs = 60_000,
  args: string[] = [],
): Promise<ServerProcess> {
  const child = startCli(['serve', '--data-dir', dataDir, '--port', '0', ...args], { BULWARK_MQTT_PORT: '0', ...env });
  let output = '';
  let lines = 0;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = await new Promise<{ https: number; mqtt: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not listen within ${listenTimeoutMs} ms:\n${output}`)),
      listenTimeoutMs,
    );
    const read = (chunk: Buffer) => {
      const text = chunk.toString();
      lines += text.split('\n').length - 1;
      if (output.length < 100_000) output += text;
      const https = HTTPS_LINE.exec(output);
      const mqtt = MQTT_LINE.exec(output);
      if (https && mqtt) {
        clearTimeout(timer);
        resolve({ https: Number(https[1]), mqtt: Number(mqtt[1]) });
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    void exited.then((code) => reject(new Error(`the server exited with ${code} before listening:\n${output}`)));
  });
  return {
    child,
    httpsPort: ports.https,
    mqttPort: ports.mqtt,
    ca,
    logLines: () => lines,
    output: () => output,
    startOutput: output,
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    async stop(ms = 30_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
