/**
 * Device listing at scale: loads 100,000 devices (bulk inserts straight through the store), then
 * walks filtered, cursor-paginated pages and prints p50/p99 per filter through the service and
 * over HTTPS, each beside the baseline measured in the same run on the same pages: the bare
 * indexed query (the SQL the store compiles) through the raw driver, better-sqlite3 or pg.
 *
 *   node --conditions=source --import tsx bench/devices-list.ts [--pg] [--devices 100000] [--pages 200] [--limit 50]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { DeviceFilter } from '../packages/server/src/devices/store.js';
import { serialAfter, type ListQuery } from '../packages/server/src/devices/service.js';
import { machine, request, table } from './support/measure.js';
import { loadFleet } from './support/fleet.js';
import { BENCH_PASSWORD, createOperators, startBenchPlatform } from './support/platform.js';

const AIM_P99_MS = 50;
const { values } = parseArgs({
  options: {
    pg: { type: 'boolean', default: false },
    devices: { type: 'string', default: '100000' },
    pages: { type: 'string', default: '200' },
    limit: { type: 'string', default: '50' },
  },
});
const DEVICES = Number(values.devices);
const PAGES = Number(values.pages);
const LIMIT = Number(values.limit);

const bench = await startBenchPlatform({ postgres: values.pg ?? false });
const { platform, admin } = bench;
let rawClose: () => Promise<void> = async () => undefined;
try {
  const loadStart = performance.now();
  const products = await loadFleet(platform, admin, DEVICES);
  const loadSeconds = (performance.now() - loadStart) / 1000;

  const filters: [string, Omit<ListQuery, 'cursor' | 'limit'>][] = [
    ['(none)', {}],
    ['status=quarantined (10%)', { status: 'quarantined' }],
    ['productId (25%)', { productId: products[2]!.id }],
    ['group (1%)', { group: 'group-042' }],
    ['tag=fleet-a (50%)', { tag: 'fleet-a' }],
    ['tag=rare (0.5%)', { tag: 'rare' }],
    ['serialPrefix (100)', { serialPrefix: 'SN-00123' }],
    ['status+firmware (7%)', { status: 'active', firmwareVersion: '2.0.3' }],
  ];

  // The raw driver on the same database: the bare indexed query, with no Kysely, service or view.
  let raw: (text: string, parameters: readonly unknown[]) => Promise<unknown[]>;
  if (bench.engine === 'sqlite') {
    const db = new SQLite(join(bench.dataDir, 'bulwark.db'), { readonly: true });
    const statements = new Map<string, SQLite.Statement>();
    raw = async (text, parameters) => {
      let statement = statements.get(text);
      if (!statement) statements.set(text, (statement = db.prepare(text)));
      return statement.all(...(parameters as unknown[]));
    };
    rawClose = async () => void db.close();
  } else {
    const pool = new pg.Pool({ connectionString: platform.config.database.url, max: 2 });
    raw = async (text, parameters) => (await pool.query(text, parameters as unknown[])).rows;
    rawClose = () => pool.end();
  }

  const [email] = await createOperators(bench, 1);
  const login = await request(`${bench.baseUrl}/api/v1/auth/login`, bench.ca, {
    method: 'POST',
    body: { organization: bench.org, email, password: BENCH_PASSWORD },
  });
  const token = String(login.body!.token);

  const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const stats = (samples: number[]) => {
    const sorted = [...samples].sort((a, b) => a - b);
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  };
  const time = async (fn: () => Promise<unknown>) => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };

  console.log(
    `Bulwark device listing benchmark: ${bench.engine}, ${DEVICES} devices loaded in ${loadSeconds.toFixed(1)} s (${Math.round(DEVICES / loadSeconds)} devices/s), pages of ${LIMIT}, ${PAGES} pages per filter walked with the cursor (restarting at the end); ${machine()}`,
  );
  const rows: (string | number)[][] = [];
  let worst = 0;
  for (const [name, filter] of filters) {
    // The pages to measure: each path is timed on the same sequence of (filter, cursor).
    const pages: (string | undefined)[] = [];
    for (let cursor: string | undefined; pages.length < PAGES;) {
      pages.push(cursor);
      cursor =
        (await platform.devices.service.list(admin, { ...filter, limit: LIMIT, ...(cursor ? { cursor } : {}) })).nextCursor ?? undefined;
    }
    const storeFilter = (cursor: string | undefined): DeviceFilter => ({
      ...filter,
      limit: LIMIT + 1,
      ...(cursor ? { afterSerial: serialAfter(cursor) } : {}),
    });
    const rawSamples: number[] = [];
    const serviceSamples: number[] = [];
    const httpSamples: number[] = [];
    for (const cursor of pages) {
      const compiled = platform.devices.store.listDevices(admin.organizationId, storeFilter(cursor)).compile();
      rawSamples.push(await time(() => raw(compiled.sql, compiled.parameters)));
      serviceSamples.push(
        await time(() => platform.devices.service.list(admin, { ...filter, limit: LIMIT, ...(cursor ? { cursor } : {}) })),
      );
      const query = new URLSearchParams({ ...(filter as Record<string, string>), limit: String(LIMIT), ...(cursor ? { cursor } : {}) });
      httpSamples.push(
        await time(async () => {
          const res = await request(`${bench.baseUrl}/api/v1/devices?${query}`, bench.ca, { token });
          if (res.status !== 200) throw new Error(`GET /api/v1/devices answered ${res.status} ${JSON.stringify(res.body)}`);
        }),
      );
    }
    const [r, s, h] = [stats(rawSamples), stats(serviceSamples), stats(httpSamples)];
    worst = Math.max(worst, s.p99);
    rows.push([name, r.p50, r.p99, s.p50, s.p99, s.p99 / r.p99, h.p50, h.p99]);
  }
  table(
    ['filter', 'raw p50 ms', 'raw p99 ms', 'service p50 ms', 'service p99 ms', 'service÷raw p99', 'HTTPS p50 ms', 'HTTPS p99 ms'],
    rows,
  );
  console.log(
    `aim p99 ≤ ${AIM_P99_MS} ms through the service for every filter: ${worst <= AIM_P99_MS ? 'met' : 'NOT met'} (worst p99 ${worst.toFixed(2)} ms)`,
  );
} finally {
  await rawClose();
  await bench.close();
}
