/**
 * A real platform node for a benchmark: `bulwark init` on a temporary data directory and a fresh
 * database (a SQLite file, or with --pg a PostgreSQL database of its own on the server of
 * BULWARK_TEST_PG_URL, dropped afterwards), then the HTTPS API on an ephemeral port with the
 * generated CA. Request logging is off and the rate limits are raised, so that the figures
 * measure the work, not the log or the limiter.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor, type Actor } from '../../packages/server/src/accounts/roles.js';
import { loadConfig } from '../../packages/server/src/ops/config.js';
import { DEFAULT_INIT, initialize } from '../../packages/server/src/runner/init.js';
import { startServer, type RunningServer } from '../../packages/server/src/runner/server.js';
import { openPlatform, type Platform } from '../../packages/server/src/platform.js';
import { adminQuery, dropDatabase, PG_URL } from '../../packages/server/src/testing/engines.js';
import { UNLIMITED_DEVICE_RATES } from '../../packages/server/src/testing/mqtt.js';

/** A password that passes the operator policy; bench accounts sign in with it. */
export const BENCH_PASSWORD = 'correct horse battery staple 7';

export interface BenchPlatform {
  platform: Platform;
  server: RunningServer;
  engine: 'sqlite' | 'postgres';
  /** The PostgreSQL database of this run (--pg). */
  database?: string;
  dataDir: string;
  ca: string;
  baseUrl: string;
  org: string;
  /** The platform admin acting on the first organization, as the CLI does. */
  admin: Actor;
  close(): Promise<void>;
}

/** `writerThread`: where SQLite telemetry batches are committed (`database.telemetryWriterThread`; unset: the server's default, a worker thread). */
export async function startBenchPlatform(options: { postgres: boolean; writerThread?: boolean }): Promise<BenchPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-bench-'));
  const database = options.postgres ? `bulwark_bench_${randomBytes(6).toString('hex')}` : undefined;
  let url = 'sqlite';
  if (database) {
    await adminQuery(`create database ${database}`);
    const pgUrl = new URL(PG_URL);
    pgUrl.pathname = `/${database}`;
    url = pgUrl.href;
  }
  const config = loadConfig({
    dataDir,
    env: {},
    overrides: {
      database: { url, poolSize: 10, ...(options.writerThread === undefined ? {} : { telemetryWriterThread: options.writerThread }) },
      http: { port: 0, rateLimitPerMinute: 1_000_000_000 },
      // The per-device limits stay out of the way (the quota is still checked on every message).
      mqtt: { port: 0, connectsPerSecond: 100_000, ...UNLIMITED_DEVICE_RATES },
      telemetry: { dailyReadingsPerDevice: 1_000_000_000, dailyBytesPerDevice: 1024 ** 4 },
      auth: { loginRateLimitPerMinute: 1_000_000_000 },
      log: { level: 'warn' },
    },
  });
  const init = await initialize(config, DEFAULT_INIT, { env: {} });
  const platform = await openPlatform(config, { env: {} });
  const server = await startServer(platform, { host: '127.0.0.1', port: 0, logger: false });
  const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
  return {
    platform,
    server,
    engine: options.postgres ? 'postgres' : 'sqlite',
    ...(database ? { database } : {}),
    dataDir,
    ca: readFileSync(init.caCertPath, 'utf8'),
    baseUrl: `https://localhost:${server.port}`,
    org: init.organization.slug,
    admin: cliActor(org!.id, 'bench'),
    async close() {
      await server.close();
      if (database) await dropDatabase(database);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates operators (no MFA required for the role) whose sign-in with BENCH_PASSWORD is 'ok' at once. */
export async function createOperators(bench: BenchPlatform, count: number): Promise<string[]> {
  const emails: string[] = [];
  for (let i = 0; i < count; i++) {
    const email = `bench-${i}@example.com`;
    await bench.platform.accounts.service.createOperator(bench.admin, {
      email,
      name: `Bench ${i}`,
      role: 'operator',
      password: BENCH_PASSWORD,
    });
    emails.push(email);
  }
  return emails;
}
