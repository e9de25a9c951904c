/**
 * Queries built and compiled once, run many times with other values: for the statements every
 * device's update runs several times (its identity, the director's read, its progress moves), where
 * Kysely's building and compiling of the query cost as much CPU as running it (bench:rollout's
 * profile: about 2.9 ms a device of some 24). The query is built through Kysely as any other,
 * once, with placeholders for its values; each run swaps the values in the compiled parameters, so
 * the SQL, its types and the values' binding are Kysely's. SQLite's prepared statements are kept
 * by the database (storage/database.ts); this keeps Kysely's side.
 *
 * A query's shape is everything of it that is not one of its arguments: the `key` it is kept under
 * must name each such part that may vary (an IN list's entries, an optional WHERE), or two shapes
 * would share one compiled text. Values must be passed as arguments, never captured by `build`.
 */
import type { Compilable, CompiledQuery, QueryResult } from 'kysely';
import type { Executor } from './executor.js';

/** Stands for argument `index` while the query is built; found again among the compiled parameters. */
class Placeholder {
  constructor(readonly index: number) {}
}

interface Compiled {
  query: CompiledQuery;
  /** For each compiled parameter: the argument it takes, or -1 when it is a constant of the shape. */
  argumentAt: number[];
}

/** Compiled shapes kept per set (each store keeps one set per database: a set never serves two dialects). */
const MAX_SHAPES = 256;

export class PreparedQueries {
  private readonly compiled = new Map<string, Compiled>();

  /**
   * Runs the query `build` makes with `args`, built and compiled on its first run under `key`.
   * `build` receives placeholders in place of the arguments and must use each of them as a value
   * of the query (a placeholder missing from the compiled parameters is refused).
   */
  execute<A extends unknown[], O>(
    db: Executor,
    key: string,
    args: readonly [...A],
    build: (...args: NoInfer<A>) => Compilable<O>,
  ): Promise<QueryResult<O>> {
    let entry = this.compiled.get(key);
    if (!entry) {
      entry = compile(args.length, build as unknown as (...args: unknown[]) => Compilable<unknown>);
      if (this.compiled.size >= MAX_SHAPES) this.compiled.clear();
      this.compiled.set(key, entry);
    }
    const parameters = entry.argumentAt.map((at, i) => (at < 0 ? entry.query.parameters[i] : args[at]));
    return db.executeQuery<O>({ ...entry.query, parameters } as CompiledQuery<O>);
  }
}

function compile(arity: number, build: (...args: unknown[]) => Compilable<unknown>): Compiled {
  const placeholders = Array.from({ length: arity }, (_, i) => new Placeholder(i));
  const query = build(...placeholders).compile();
  const argumentAt = query.parameters.map((p) => (p instanceof Placeholder ? p.index : -1));
  for (const placeholder of placeholders)
    if (!argumentAt.includes(placeholder.index))
      throw new Error(`Prepared query: argument ${placeholder.index} is not a value of the query (${query.sql.slice(0, 80)}…)`);
  return { query, argumentAt };
}
