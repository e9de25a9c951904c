/**
 * Counts the database round trips a process makes, on either engine, by wrapping the drivers
 * below Kysely: better-sqlite3's statement `run`/`all` (Kysely runs every query, BEGIN and COMMIT
 * included, through one of them) and node-postgres's `Client#query`. For benches and for tests
 * that pin how many queries an operation costs, so a change that brings back an N+1 fails.
 * Wrapping is process-wide; `stop()` undoes it.
 */
import SQLite from 'better-sqlite3';
import pg from 'pg';

export interface QueryCounter {
  /** Queries since the counter started or was last reset. */
  readonly total: number;
  /** Queries per SQL text (its first 120 characters), most frequent first. */
  bySql(): [string, number][];
  /** Milliseconds spent in the driver call per SQL text, most first (SQLite: the statement's run; PostgreSQL: sending it). */
  msBySql(): [string, number][];
  reset(): void;
  stop(): void;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

export function countQueries(): QueryCounter {
  const counts = new Map<string, number>();
  const times = new Map<string, number>();
  let total = 0;
  const seen = (source: unknown) => {
    total++;
    const text = typeof source === 'string' ? source : ((source as { text?: string } | null)?.text ?? '?');
    const key = text.replace(/\s+/g, ' ').slice(0, 120);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return key;
  };
  const restores: (() => void)[] = [];
  const wrap = (target: Record<string, Method>, name: string, sqlOf: (self: unknown, args: unknown[]) => unknown) => {
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      const key = seen(sqlOf(this, args));
      const start = process.hrtime.bigint();
      const result = original.apply(this, args);
      times.set(key, (times.get(key) ?? 0) + Number(process.hrtime.bigint() - start) / 1e6);
      return result;
    };
    restores.push(() => void (target[name] = original));
  };
  // better-sqlite3 does not export its Statement class: take its prototype from a statement.
  const scratch = new SQLite(':memory:');
  const statement = Object.getPrototypeOf(scratch.prepare('select 1')) as Record<string, Method>;
  scratch.close();
  for (const name of ['run', 'all', 'get', 'iterate']) wrap(statement, name, (self) => (self as { source: string }).source);
  wrap(pg.Client.prototype as unknown as Record<string, Method>, 'query', (_self, args) => args[0]);
  return {
    get total() {
      return total;
    },
    bySql: () => [...counts].sort((a, b) => b[1] - a[1]),
    msBySql: () => [...times].sort((a, b) => b[1] - a[1]),
    reset() {
      total = 0;
      counts.clear();
      times.clear();
    },
    stop() {
      for (const restore of restores.reverse()) restore();
    },
  };
}
