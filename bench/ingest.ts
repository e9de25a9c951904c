/**
 * Telemetry ingest over mutual TLS: N devices (1,000 by default), each with its own key and
 * certificate, keep a window of QoS 1 messages in flight against the platform's broker; every
 * PUBACK means "committed to the database". Printed beside the same load, from the same load
 * generator process, against a Mosquitto broker started here with the same certificates
 * (mutual TLS, no storage, no ACL): stored messages per second, publish-to-PUBACK p50/p99, and
 * broker CPU per message, with the ratios. Then it counts the stored rows: nothing acknowledged
 * may be missing.
 *
 *   npm run bench:ingest -- [--pg] [--devices 1000] [--window 4] [--duration 10]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadServerTls, pkiPaths } from '../packages/server/src/pki/ca.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../packages/server/src/testing/devices.js';
import { machine, table } from './support/measure.js';
import type { LoadJob, LoadReport } from './support/mqtt-load.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({
  options: {
    pg: { type: 'boolean', default: false },
    devices: { type: 'string', default: '1000' },
    window: { type: 'string', default: '4' },
    duration: { type: 'string', default: '10' },
  },
});
const devicesWanted = Number(values.devices);
const window = Number(values.window);
const seconds = Number(values.duration);
for (const [name, n] of Object.entries({ devices: devicesWanted, window, duration: seconds })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs the load generator process; returns its report. */
function runLoad(job: LoadJob, dir: string): Promise<LoadReport> {
  const file = join(dir, `job-${job.port}.json`);
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/support/mqtt-load.ts', file], { maxBuffer: 1 << 20, timeout: (seconds + 300) * 1000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`load generator failed: ${stderr || error.message}`));
      if (stderr) process.stderr.write(stderr);
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LoadReport);
    });
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

console.log(`bench:ingest — ${machine()}`);
const bench = await startBenchPlatform({ postgres: values.pg ?? false });
const work = mkdtempSync(join(tmpdir(), 'bulwark-ingest-'));
let mosquitto: ReturnType<typeof spawn> | null = null;
try {
  const { platform, server } = bench;
  const gateway = server.mqtt!;
  const org = await organizationIdOf(platform, bench.org);
  const product = await testProduct(platform, org);
  const t0 = Date.now();
  const devices: TestDevice[] = [];
  for (let i = 0; i < devicesWanted; i++) devices.push(await provisionTestDevice(platform, org, product, `BENCH-${i}`));
  console.log(`${devices.length} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s; engine ${bench.engine}; window ${window} per device; ${seconds} s per run`);
  const jobDevices = devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert }));

  // Bulwark: broker in this process, load generator in its own.
  const rowsBefore = await platform.telemetry.store.count();
  const cpuBefore = process.cpuUsage();
  const ours = await runLoad({ port: gateway.port, ca: bench.ca, devices: jobDevices, window, seconds, connectConcurrency: 50 }, work);
  const cpu = process.cpuUsage(cpuBefore);
  const stored = (await platform.telemetry.store.count()) - rowsBefore;

  // Mosquitto with the same server certificate, trusting the same CA for client certificates.
  const tls = loadServerTls(bench.dataDir, platform.box);
  writeFileSync(join(work, 'server.pem'), tls.cert);
  writeFileSync(join(work, 'server.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(work, 'ca.pem'), readFileSync(pkiPaths(bench.dataDir).caCert, 'utf8') + (await platform.pki.caChain()));
  const mport = await freePort();
  writeFileSync(
    join(work, 'mosquitto.conf'),
    [
      `listener ${mport} 127.0.0.1`,
      `cafile ${join(work, 'ca.pem')}`,
      `certfile ${join(work, 'server.pem')}`,
      `keyfile ${join(work, 'server.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      'persistence false',
      'max_inflight_messages 100',
      'log_type error',
      ...(userInfo().uid === 0 ? ['user root'] : []),
    ].join('\n') + '\n',
  );
  mosquitto = spawn('mosquitto', ['-c', join(work, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (mosquitto.exitCode !== null) throw new Error('mosquitto did not start');
  const mcpuBefore = processCpuSeconds(mosquitto.pid!);
  const theirs = await runLoad({ port: mport, ca: bench.ca, devices: jobDevices, window, seconds, connectConcurrency: 50 }, work);
  const mcpu = processCpuSeconds(mosquitto.pid!) - mcpuBefore;

  const oursRate = stored / ours.seconds;
  const theirsRate = theirs.acked / theirs.seconds;
  const oursCpuUs = ((cpu.user + cpu.system) / ours.acked);
  const theirsCpuUs = (mcpu * 1e6) / theirs.acked;
  console.log('');
  table(
    ['figure', 'Bulwark', 'Mosquitto', 'ratio'],
    [
      ['messages/s (Bulwark: stored; Mosquitto: acknowledged)', oursRate, theirsRate, oursRate / theirsRate],
      ['publish→PUBACK p50 ms', ours.p50, theirs.p50, ours.p50 / theirs.p50],
      ['publish→PUBACK p99 ms', ours.p99, theirs.p99, ours.p99 / theirs.p99],
      ['broker CPU µs per message', oursCpuUs, theirsCpuUs, oursCpuUs / theirsCpuUs],
      ['connections', ours.connected, theirs.connected, ours.connected / theirs.connected],
      ['connect time s', ours.connectSeconds, theirs.connectSeconds, ours.connectSeconds / theirs.connectSeconds],
    ],
  );
  console.log('');
  console.log(`acknowledged ${ours.acked}, stored ${stored}, missing ${Math.max(0, ours.acked - stored)}; publish errors ${ours.errors}; batches ${gateway.writer.stats.committedBatches} (mean ${(gateway.writer.stats.committedRows / Math.max(1, gateway.writer.stats.committedBatches)).toFixed(0)} rows)`);
  console.log(`broker counters: ${JSON.stringify(gateway.stats)}`);
  console.log('Bulwark CPU includes TLS, MQTT parsing, ACL, validation and the database writes of this process; PostgreSQL server CPU is not counted.');
  if (ours.acked > stored) process.exitCode = 1;
} finally {
  mosquitto?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
  await bench.close();
}
