/**
 * What an idle device connection keeps on the broker's V8 heap, by kind of object: the platform
 * runs in this process, mutual-TLS devices connect from load generator processes
 * (bench/support/conn-load.ts, keep-alive 600 s) and stay idle, in two batches of --devices / 2:
 * a heap snapshot is taken after a full collection once the first batch is up and again once the
 * second is, and the retained objects are summed by constructor (or V8 type) over the difference,
 * per connection of the second batch. The first batch pays what a process allocates once, on its
 * first connections (compiled code, hidden classes, mqtt-packet's number cache), which is not a
 * cost per connection. Beside it, the same over bare node:tls connections held by a server in this
 * process: what the TLS socket itself costs, which a broker in Node cannot go below.
 *
 * The snapshots are written to files and read only once all four are taken, so that no table of
 * this script's is on the heap a snapshot measures. With --save DIR they are kept there (open them
 * in Chrome's DevTools, Memory tab, and compare "broker-full" with "broker-half" to see what retains what).
 *
 *   npm run bench:connection-heap -- [--devices 2000] [--top 25] [--save DIR]
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { organizationIdOf } from '../packages/server/src/testing/devices.js';
import { loadServerTls } from '../packages/server/src/pki/ca.js';
import { SERVER_TLS } from '../packages/server/src/transport/tls-policy.js';
import { provisionConnFleet, type ConnFleet } from './support/conn-fleet.js';
import type { ConnJob } from './support/conn-load.js';
import { machine, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '2000' }, top: { type: 'string', default: '25' }, save: { type: 'string' } },
});
const count = Number(values.devices);
if (!Number.isInteger(count) || count < 2) throw new Error('--devices must be an integer of at least 2');
const top = Number(values.top);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Writes a heap snapshot, after a full collection, to `name`.heapsnapshot in the snapshot directory; returns its path. */
function snapshot(name: string): string {
  gc();
  gc();
  return writeHeapSnapshot(join(snapshots, `${name}.heapsnapshot`));
}

/** Self sizes summed per object kind ("type:name"), with counts, of a snapshot file. */
async function heapByKind(file: string): Promise<Map<string, { bytes: number; count: number }>> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(file)) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const snapshot = JSON.parse(text) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = snapshot.snapshot.meta.node_types[0];
  const kinds = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'native' || type === 'closure' ? snapshot.strings[snapshot.nodes[i + nameAt]!]! : '';
    const key = `${type}:${name.slice(0, 60)}`;
    const kind = kinds.get(key) ?? { bytes: 0, count: 0 };
    kind.bytes += snapshot.nodes[i + sizeAt]!;
    kind.count++;
    kinds.set(key, kind);
  }
  return kinds;
}

function difference(before: Map<string, { bytes: number; count: number }>, after: Map<string, { bytes: number; count: number }>) {
  const rows: { kind: string; bytes: number; count: number }[] = [];
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { bytes: 0, count: 0 };
    rows.push({ kind, bytes: a.bytes - b.bytes, count: a.count - b.count });
  }
  return rows.sort((x, y) => y.bytes - x.bytes);
}

/** Starts a load generator holding connections of `devices` (batch 0 or 1 of the fleet); resolves once all are up. */
function hold(mode: ConnJob['mode'], port: number, ca: string, fleet: ConnFleet, batch: 0 | 1, dir: string) {
  const file = join(dir, `${mode}-${batch}.json`);
  const half = Math.floor(fleet.devices.length / 2);
  const job: ConnJob = {
    mode,
    port,
    ca,
    key: fleet.key,
    devices: batch === 0 ? fleet.devices.slice(0, half) : fleet.devices.slice(half),
    concurrency: 50,
    localAddress: `127.0.0.${2 + batch}`,
    keepalive: 600,
  };
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/support/conn-load.ts', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise<{ connected: number; stop: () => void }>((resolve, reject) => {
    createInterface({ input: proc.stdout }).once('line', (line) =>
      resolve({ connected: (JSON.parse(line) as { connected: number }).connected, stop: () => proc.kill('SIGTERM') }),
    );
    proc.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

console.log(`bench:connection-heap — ${machine()}; ${count} idle mTLS devices; load average ${load()}`);
const bench = await startBenchPlatform({ postgres: false });
const dir = mkdtempSync(join(tmpdir(), 'bulwark-conn-heap-'));
const snapshots = values.save ?? dir;
try {
  const platform = bench.platform;
  const fleet = await provisionConnFleet(platform, await organizationIdOf(platform, bench.org), count, 'HEAP');
  // Bare node:tls first, while the broker has never held a connection (what the broker leaves behind
  // after its connections end would otherwise count against the baseline).
  const tls = { ...loadServerTls(bench.dataDir, platform.box), ca: await platform.pki.caChain() };
  const sockets = new Set<TLSSocket>();
  const server = createServer({ ...SERVER_TLS, ...tls, requestCert: true, rejectUnauthorized: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', (bytes: Buffer) => socket.write(bytes));
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const barePort = (server.address() as { port: number }).port;
  const bareFirst = await hold('tls', barePort, bench.ca, fleet, 0, dir);
  await pause(3000);
  const halfBareFile = snapshot('bare-half');
  const bare = await hold('tls', barePort, bench.ca, fleet, 1, dir);
  await pause(3000);
  const fullBareFile = snapshot('bare-full');
  bareFirst.stop();
  bare.stop();
  server.close();
  await pause(3000);

  const mqttPort = bench.server.mqtt!.port;
  const oursFirst = await hold('mqtt', mqttPort, bench.ca, fleet, 0, dir);
  await pause(3000);
  const halfBrokerFile = snapshot('broker-half');
  const ours = await hold('mqtt', mqttPort, bench.ca, fleet, 1, dir);
  await pause(3000);
  const fullBrokerFile = snapshot('broker-full');
  oursFirst.stop();
  ours.stop();

  const broker = difference(await heapByKind(halfBrokerFile), await heapByKind(fullBrokerFile));
  const baseline = difference(await heapByKind(halfBareFile), await heapByKind(fullBareFile));
  const total = (rows: { bytes: number }[]) => rows.reduce((sum, r) => sum + r.bytes, 0);
  console.log(
    `\nconnected: Bulwark ${oursFirst.connected} then ${ours.connected} more, bare node:tls ${bareFirst.connected} then ${bare.connected} more (per connection: of the second batch); load average ${load()}`,
  );
  table(
    ['retained V8 heap per connection', 'Bulwark, bytes', 'bare node:tls, bytes', 'ratio'],
    [
      [
        'all objects',
        total(broker) / ours.connected,
        total(baseline) / bare.connected,
        total(broker) / ours.connected / (total(baseline) / bare.connected),
      ],
    ],
  );
  const bareOf = new Map(baseline.map((r) => [r.kind, r]));
  console.log(`\nthe ${top} largest kinds on the broker, per connection (objects per connection, bytes), beside bare node:tls:`);
  table(
    ['kind (V8 type:constructor)', 'objects', 'bytes', 'bare objects', 'bare bytes'],
    broker.slice(0, top).map((r) => {
      const b = bareOf.get(r.kind);
      return [
        r.kind,
        r.count / ours.connected,
        r.bytes / ours.connected,
        (b?.count ?? 0) / bare.connected,
        (b?.bytes ?? 0) / bare.connected,
      ];
    }),
  );
  console.log(`\nload average at the end: ${load()}`);
} finally {
  await bench.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
