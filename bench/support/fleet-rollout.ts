/**
 * bench:rollout's fleet part (see bench/rollout.ts): provisions N devices on the bench platform,
 * publishes a signed release, and times one rollout of one phase at 100 % taken by the simulated
 * fleet in a child process (support/fleet-load.ts), against the same devices fetching the same
 * image bytes from a bare mutual-TLS node:https server in this process. CPU is this process's
 * (process.cpuUsage), so it is the platform's (or the bare server's) alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { Session } from 'node:inspector';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { loadServerTls } from '../../packages/server/src/pki/ca.js';
import { SERVER_TLS } from '../../packages/server/src/transport/tls-policy.js';
import { provisionTestDevice, type TestDevice } from '../../packages/server/src/testing/devices.js';
import { countQueries } from '../../packages/server/src/testing/query-counter.js';
import { hardwareProduct } from '../../packages/server/src/testing/rollout-fixtures.js';
import { inBatches } from '../../packages/device/src/sim/batches.js';
import { setUpFleetRepository } from '../../packages/device/src/testing/fleet-update.js';
import { testImage } from '../../packages/device/src/testing/update-fixture.js';
import type { FleetJob } from './fleet-load.js';
import { table } from './measure.js';
import type { BenchPlatform } from './platform.js';

interface Child {
  process: ChildProcess;
  /** Resolves with the next line the child prints that starts with `prefix`. */
  next(prefix: string): Promise<string>;
}

function child(jobFile: string): Child {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/support/fleet-load.ts', jobFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout! });
  const waiting: { prefix: string; resolve: (line: string) => void }[] = [];
  lines.on('line', (line) => {
    const i = waiting.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line);
  });
  return {
    process: proc,
    next: (prefix) =>
      new Promise((resolve, reject) => {
        waiting.push({ prefix, resolve: (line) => resolve(line.slice(prefix.length).trim()) });
        proc.once('exit', (code) => reject(new Error(`fleet-load exited with ${code} before "${prefix}"`)));
      }),
  };
}

/** A CPU profile of this process (node:inspector), for --profile: the rollout alone, not the provisioning before it. */
async function startProfile(): Promise<{ stop(): Promise<object> }> {
  const session = new Session();
  session.connect();
  const post = (method: string) =>
    new Promise<object>((resolve, reject) => session.post(method, (error, result) => (error ? reject(error) : resolve(result ?? {}))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    async stop() {
      const { profile } = (await post('Profiler.stop')) as { profile: object };
      session.disconnect();
      return profile;
    },
  };
}

/** TLS handshakes (full and resumed) and HTTP requests a server saw while counting. */
function countConnections(server: TlsServer) {
  const counts = { handshakes: 0, resumed: 0, requests: 0 };
  const onSecure = (socket: TLSSocket) => {
    counts.handshakes++;
    if (socket.isSessionReused()) counts.resumed++;
  };
  const onRequest = () => counts.requests++;
  server.on('secureConnection', onSecure);
  server.on('request', onRequest);
  return {
    counts,
    stop() {
      server.off('secureConnection', onSecure);
      server.off('request', onRequest);
    },
  };
}

const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};

export async function fleetRollout(
  bench: BenchPlatform,
  options: { devices: number; concurrency: number; imageBytes: number; countQueries?: boolean; profile?: string },
): Promise<void> {
  const { platform, server } = bench;
  const n = options.devices;
  const org = bench.admin.organizationId;
  const work = mkdtempSync(join(tmpdir(), 'bulwark-bench-fleet-'));
  // The agents' state directories on tmpfs where there is one: the figure is the platform's, not this disk's fsync.
  const stateRoot = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulwark-bench-fleet-'));
  const children: ChildProcess[] = [];
  let bare: https.Server | null = null;
  try {
    const product = await hardwareProduct(platform, org, 'Bench fleet', 'hw-bench');
    const t0 = Date.now();
    const devices: TestDevice[] = [];
    await inBatches(
      Array.from({ length: n }, (_, i) => i),
      8,
      async (i) => void (devices[i] = await provisionTestDevice(platform, org, product, `FLEET-${i}`)),
    );
    const tickSeconds = platform.config.updates.rolloutTickSeconds;
    console.log(
      `\nfleet rollout: ${n} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(0)} s; image ${options.imageBytes / 1024} KiB; ${options.concurrency} devices updating at once in the simulator; rollout tick every ${tickSeconds} s as the server's; load average ${loadavg()[0]!.toFixed(2)}`,
    );
    const repo = await setUpFleetRepository(platform, org, product, 'hw-bench');
    const release = await repo.publish('2.0.0', 1, options.imageBytes);
    const identities = devices.map((d) => ({ deviceId: d.id, key: d.key, cert: d.cert }));
    const base = {
      apiUrl: bench.baseUrl,
      brokerUrl: `mqtts://localhost:${server.mqtt!.port}`,
      ca: bench.ca,
      organizationId: org,
      hardwareId: 'hw-bench',
      identities,
      stateRoot,
      factory: {
        ...repo.factory,
        repositoryRoot: repo.factory.repositoryRoot.toString('base64'),
        directorRoot: repo.factory.directorRoot.toString('base64'),
        image: repo.factory.image.toString('base64'),
      },
      concurrency: options.concurrency,
      // A second per device at least: a large fleet on a loaded machine updates a few devices a second.
      timeoutSeconds: Math.max(600, n),
    };

    // Bulwark: the rollout, driven by the rollout service's tick as the server's timer would.
    const agentsJob = join(work, 'agents.json');
    writeFileSync(agentsJob, JSON.stringify({ ...base, mode: 'agents' } satisfies FleetJob), { mode: 0o600 });
    const agents = child(agentsJob);
    children.push(agents.process);
    const ready = JSON.parse(await agents.next('ready')) as { connected: number };
    if (ready.connected !== n) throw new Error(`only ${ready.connected} of ${n} simulated devices connected`);
    // What the platform spends with the fleet connected and nothing to do (keep-alives, its timers),
    // so the rollout's figure can be read against it.
    const idleCpu0 = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const idleCpuPerSecond = cpuSeconds(idleCpu0) / 5;
    const queries = options.countQueries ? countQueries() : null;
    const profiler = options.profile ? await startProfile() : null;
    const connections = countConnections(server.app.server as unknown as TlsServer);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const rolloutId = await repo.rollout({
      releaseId: release.id,
      selector: { deviceIds: identities.map((d) => d.deviceId) },
      phases: [{ percent: 100, soakSeconds: 0 }],
      successThreshold: 1,
      maxConcurrentDownloads: n,
    });
    const done = agents.next('done');
    agents.process.stdin!.write('go\n');
    let status = 'running';
    let fleetDone: string | null = null;
    let wake = () => {};
    void done.then((line) => {
      fleetDone = line;
      wake();
    });
    // The tick at the server's cadence (updates.rolloutTickSeconds), and at once when the fleet is done,
    // then every 250 ms until the rollout completes: what a rollout costs, not what polling it faster would.
    while (status === 'running' || fleetDone === null) {
      await platform.updates.rollouts.tick();
      status = (await platform.updates.rollouts.get(repo.actor, rolloutId)).status;
      if (status !== 'running' && status !== 'completed') break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, fleetDone === null ? tickSeconds * 1000 : 250);
      });
    }
    const oursWall = (performance.now() - wall0) / 1000;
    const oursCpu = cpuSeconds(cpu0);
    connections.stop();
    queries?.stop();
    if (profiler) writeFileSync(options.profile!, JSON.stringify(await profiler.stop()));
    const final = await platform.updates.rollouts.get(repo.actor, rolloutId);
    const fleet = JSON.parse(fleetDone ?? (await done)) as {
      cpuSeconds: number;
      states: Record<string, number>;
      errors: number;
      failures: string[];
    };
    // The fleet disconnects only now, outside the figures: neither its disconnects nor its connections idling count.
    const agentsExited = new Promise((resolve) => agents.process.once('exit', resolve));
    agents.process.stdin!.end('stop\n');
    await agentsExited;
    if (final.status !== 'completed' || final.counts.succeeded !== n)
      throw new Error(`the rollout ended ${final.status} with ${JSON.stringify(final.counts)}; fleet ${JSON.stringify(fleet)}`);

    // The baseline: the same devices fetch the same bytes over mutual TLS from a bare server here,
    // with the platform's TLS settings (transport/tls-policy.ts: versions, suites, no session tickets).
    const tls = loadServerTls(bench.dataDir, platform.box);
    const image = testImage('fleet-2.0.0', options.imageBytes);
    bare = https.createServer(
      { ...SERVER_TLS, cert: tls.cert, key: tls.key, ca: await platform.pki.caChain(), requestCert: true, rejectUnauthorized: true },
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': image.length });
        res.end(image);
      },
    );
    await new Promise<void>((resolve) => bare!.listen(0, '127.0.0.1', resolve));
    const bareJob = join(work, 'bare.json');
    writeFileSync(
      bareJob,
      JSON.stringify({
        ...base,
        mode: 'bare',
        imageUrl: `https://localhost:${(bare.address() as { port: number }).port}/image`,
      } satisfies FleetJob),
      { mode: 0o600 },
    );
    const fetcher = child(bareJob);
    children.push(fetcher.process);
    await fetcher.next('ready');
    const bareConnections = countConnections(bare);
    const bareProfiler = options.profile ? await startProfile() : null;
    const bareCpu0 = process.cpuUsage();
    const bareWall0 = performance.now();
    const bareDone = fetcher.next('done');
    fetcher.process.stdin!.write('go\n');
    const bareResult = JSON.parse(await bareDone) as { cpuSeconds: number; failures: number; bytes: number };
    const bareWall = (performance.now() - bareWall0) / 1000;
    const bareCpu = cpuSeconds(bareCpu0);
    bareConnections.stop();
    if (bareProfiler) writeFileSync(options.profile!.replace(/(\.cpuprofile)?$/, '.bare$1'), JSON.stringify(await bareProfiler.stop()));
    if (bareResult.failures > 0) throw new Error(`${bareResult.failures} bare fetches failed`);

    console.log('');
    table(
      ['figure', 'Bulwark rollout', 'bare mTLS fetch', 'ratio'],
      [
        ['devices', n, n, 1],
        ['wall time, s', oursWall, bareWall, oursWall / bareWall],
        ['devices per second', n / oursWall, n / bareWall, bareWall / oursWall],
        ['server CPU, s', oursCpu, bareCpu, oursCpu / bareCpu],
        ['server CPU per device, ms', (oursCpu * 1000) / n, (bareCpu * 1000) / n, oursCpu / bareCpu],
        [
          'HTTPS requests per device',
          connections.counts.requests / n,
          bareConnections.counts.requests / n,
          connections.counts.requests / bareConnections.counts.requests,
        ],
        [
          'TLS handshakes per device (HTTPS)',
          connections.counts.handshakes / n,
          bareConnections.counts.handshakes / n,
          connections.counts.handshakes / bareConnections.counts.handshakes,
        ],
        ['of which resumed sessions', connections.counts.resumed / n, bareConnections.counts.resumed / n, '-'],
        ['platform CPU idle with the fleet connected, ms/s', idleCpuPerSecond * 1000, '-', '-'],
        ['device-side CPU (simulator process), s', fleet.cpuSeconds, bareResult.cpuSeconds, fleet.cpuSeconds / bareResult.cpuSeconds],
      ],
    );
    console.log(
      `\nrollout ${final.status}: ${JSON.stringify(final.counts)}; simulator errors ${fleet.errors}. A Bulwark device's update is: updates/available over MQTT, ` +
        'one request for the metadata of its check (director targets signed for it; the TUF timestamp, snapshot, targets and product metadata), the image, five statuses and a signed version report; the HTTPS requests on one keep-alive mutual-TLS connection per device.',
    );
    if (queries) {
      console.log(
        `\ndatabase round trips during the rollout: ${queries.total} (${(queries.total / n).toFixed(1)} per device); the most frequent:`,
      );
      for (const [text, count] of queries.bySql().slice(0, 30)) console.log(`${(count / n).toFixed(2).padStart(8)}  ${text}`);
      console.log('\ntime in the driver call per device, µs (SQLite: the statement itself; PostgreSQL: sending it):');
      for (const [text, ms] of queries.msBySql().slice(0, 15)) console.log(`${((ms * 1000) / n).toFixed(0).padStart(8)}  ${text}`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    bare?.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(stateRoot, { recursive: true, force: true });
  }
}
