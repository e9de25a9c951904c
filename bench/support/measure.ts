/**
 * What the benchmarks share: an HTTPS load run with autocannon in its own worker thread (so the
 * load generator does not share the server's event loop), a single request with full certificate
 * verification, command-line flags, medians, and a table that prints each figure beside the
 * baseline measured in the same run, with the ratio.
 */
import https from 'node:https';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  p50: number;
  p99: number;
  failures: number;
}

export interface LoadOptions {
  url: string;
  ca: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
  requests?: { method: string; path: string; body?: string; headers?: Record<string, string> }[];
}

/**
 * autocannon connects with `rejectUnauthorized: false` whatever tlsOptions say, so each benchmark
 * first checks the same URL with `request()` below, which verifies the chain and the name.
 */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.duration,
    workers: 1,
    servername: 'localhost',
    tlsOptions: { ca: options.ca },
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.requests ? { requests: options.requests } : {}),
  });
  return {
    rps: result['2xx'] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}

/** One HTTPS request that trusts only the given CA (real verification); resolves with status and JSON. */
export function request(
  url: string,
  ca: string,
  init: { method?: string; body?: unknown; token?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
  const headers: Record<string, string> = {};
  if (payload) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method ?? 'GET', ca, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface BenchFlags {
  pg: boolean;
  duration: number;
  rounds: number;
  connections: number;
  users: number;
}

export function benchFlags(defaults: { connections: number }): BenchFlags {
  const { values } = parseArgs({
    options: {
      pg: { type: 'boolean', default: false },
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', short: 'c', default: String(defaults.connections) },
      users: { type: 'string', default: '20' },
    },
  });
  const int = (name: string, raw: string | undefined) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
    return n;
  };
  return {
    pg: values.pg ?? false,
    duration: int('duration', values.duration),
    rounds: int('rounds', values.rounds),
    connections: int('connections', values.connections),
    users: int('users', values.users),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function machine(): string {
  return `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`;
}

/** Prints rows as aligned columns; numbers get the precision their size calls for. */
export function table(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map((v) => (typeof v === 'number' ? format(v) : v)))];
  const widths = header.map((_h, i) => Math.max(...cells.map((row) => row[i]!.length)));
  for (const row of cells) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}
