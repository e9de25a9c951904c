/**
 * What an idle device connection keeps on the broker's V8 heap, by kind of object: the platform
 * runs in this process, --devices mutual-TLS devices connect from a load generator process
 * (bench/support/conn-load.ts, keep-alive 600 s) and stay idle; a heap snapshot is taken after a
 * full collection before and after they connect, and the retained objects are summed by
 * constructor (or V8 type) over the difference, per connection. Beside it, the same snapshot
 * difference over bare node:tls connections held by a server in this process: what the TLS
 * socket itself costs, which a broker in Node cannot go below.
 *
 * With --save DIR, the four snapshots are written there (open them in Chrome's DevTools, Memory tab,
 * and compare "broker-full" with "broker-empty" to see what retains what).
 *
 *   npm run bench:connection-heap -- [--devices 2000] [--top 25] [--save DIR]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { getHeapSnapshot, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { organizationIdOf } from '../packages/server/src/testing/devices.js';
import { loadServerTls } from '../packages/server/src/pki/ca.js';
import { provisionConnFleet, type ConnFleet } from './support/conn-fleet.js';
import type { ConnJob } from './support/conn-load.js';
import { machine, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '2000' }, top: { type: 'string', default: '25' }, save: { type: 'string' } },
});
const count = Number(values.devices);
const top = Number(values.top);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Self sizes summed per object kind ("type:name"), with counts, of a heap snapshot taken after a full collection. */
async function heapByKind(name: string): Promise<Map<string, { bytes: number; count: number }>> {
  gc();
  gc();
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (values.save) writeFileSync(join(values.save, `${name}.heapsnapshot`), text);
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

/** Starts a load generator holding the fleet's connections; resolves once all are up. */
function hold(mode: ConnJob['mode'], port: number, ca: string, fleet: ConnFleet, dir: string) {
  const file = join(dir, `${mode}.json`);
  const job: ConnJob = {
    mode,
    port,
    ca,
    key: fleet.key,
    devices: fleet.devices,
    concurrency: 50,
    localAddress: '127.0.0.2',
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
try {
  const platform = bench.platform;
  const fleet = await provisionConnFleet(platform, await organizationIdOf(platform, bench.org), count, 'HEAP');
  // Bare node:tls first, while the broker has never held a connection (what the broker leaves behind
  // after its connections end would otherwise count against the baseline).
  const tls = { ...loadServerTls(bench.dataDir, platform.box), ca: await platform.pki.caChain() };
  const sockets = new Set<TLSSocket>();
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', (bytes: Buffer) => socket.write(bytes));
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await pause(2000);
  const emptyBare = await heapByKind('bare-empty');
  const bare = await hold('tls', (server.address() as { port: number }).port, bench.ca, fleet, dir);
  await pause(3000);
  const fullBare = await heapByKind('bare-full');
  bare.stop();
  server.close();
  await pause(3000);

  const mqttPort = bench.server.mqtt!.port;
  const emptyBroker = await heapByKind('broker-empty');
  const ours = await hold('mqtt', mqttPort, bench.ca, fleet, dir);
  await pause(3000);
  const fullBroker = await heapByKind('broker-full');
  ours.stop();

  const broker = difference(emptyBroker, fullBroker);
  const baseline = difference(emptyBare, fullBare);
  const total = (rows: { bytes: number }[]) => rows.reduce((sum, r) => sum + r.bytes, 0);
  console.log(`\nconnected: Bulwark ${ours.connected}, bare node:tls ${bare.connected}; load average ${load()}`);
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
