/**
 * Idle device connections: N devices (10,000 by default), each with its own key and certificate,
 * connect over mutual TLS to the platform's broker and stay idle. Prints the server memory per
 * connection and the connects per second (TLS handshake + MQTT CONNECT + certificate checks
 * against the database), beside the same load against a bare node:tls server in its own process
 * (same certificates, client certificates required, connections only held): the floor a Node
 * broker cannot go below.
 *
 *   npm run bench:connections -- [--devices 10000] [--concurrency 100]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadServerTls } from '../packages/server/src/pki/ca.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../packages/server/src/testing/devices.js';
import { machine, table } from './support/measure.js';
import type { ConnJob } from './support/conn-load.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '100' } },
});
const count = Number(values.devices);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(concurrency) || concurrency < 1)
  throw new Error('--devices and --concurrency must be positive integers');

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:connections does)');

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** Starts a node child process and resolves with its first output line. */
function child(args: string[]): Promise<{ process: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve({ process: proc, line }));
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
};

console.log(`bench:connections — ${machine()}`);
const bench = await startBenchPlatform({ postgres: false });
const work = mkdtempSync(join(tmpdir(), 'bulwark-conns-'));
const children: ChildProcess[] = [];
try {
  const { platform, server } = bench;
  const org = await organizationIdOf(platform, bench.org);
  const product = await testProduct(platform, org);
  const t0 = Date.now();
  const devices: TestDevice[] = [];
  for (let i = 0; i < count; i++) {
    devices.push(await provisionTestDevice(platform, org, product, `CONN-${i}`));
    if (i % 1000 === 999) process.stdout.write(`\rprovisioned ${i + 1}/${count}`);
  }
  console.log(`\r${count} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${concurrency} connecting at once`);
  const jobDevices = devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert }));
  const clientCa = await platform.pki.caChain();

  // Bulwark: the broker in this process.
  await settle();
  const before = process.memoryUsage().rss;
  const oursJob = join(work, 'ours.json');
  writeFileSync(
    oursJob,
    JSON.stringify({ mode: 'mqtt', port: server.mqtt!.port, ca: bench.ca, devices: jobDevices, concurrency } satisfies ConnJob),
  );
  const ours = await child(['bench/support/conn-load.ts', oursJob]);
  children.push(ours.process);
  const oursResult = JSON.parse(ours.line) as { connected: number; failures: number; perSecond: number };
  await settle();
  const oursPerConn = (process.memoryUsage().rss - before) / oursResult.connected;
  ours.process.kill('SIGTERM');

  // Bare node:tls in its own process, same certificates.
  const tls = loadServerTls(bench.dataDir, platform.box);
  const tlsJob = join(work, 'tls-server.json');
  writeFileSync(tlsJob, JSON.stringify({ cert: tls.cert, key: tls.key, ca: clientCa }), { mode: 0o600 });
  const bare = await child(['bench/support/bare-tls.ts', tlsJob]);
  children.push(bare.process);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const bareBefore = rssOf(bare.process.pid!);
  const bareJob = join(work, 'bare.json');
  writeFileSync(
    bareJob,
    JSON.stringify({ mode: 'tls', port: Number(bare.line), ca: bench.ca, devices: jobDevices, concurrency } satisfies ConnJob),
  );
  const load = await child(['bench/support/conn-load.ts', bareJob]);
  children.push(load.process);
  const bareResult = JSON.parse(load.line) as { connected: number; failures: number; perSecond: number };
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const barePerConn = (rssOf(bare.process.pid!) - bareBefore) / bareResult.connected;

  console.log('');
  table(
    ['figure', 'Bulwark', 'bare node:tls', 'ratio'],
    [
      ['connections held', oursResult.connected, bareResult.connected, oursResult.connected / bareResult.connected],
      ['server memory per idle connection, KB', oursPerConn / 1024, barePerConn / 1024, oursPerConn / barePerConn],
      ['connects per second', oursResult.perSecond, bareResult.perSecond, oursResult.perSecond / bareResult.perSecond],
    ],
  );
  console.log(
    `\nfailures: Bulwark ${oursResult.failures}, bare ${bareResult.failures}. Bulwark connects include the MQTT CONNECT, the certificate's record and device status read from the database, and the presence write.`,
  );
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  await bench.close();
}
