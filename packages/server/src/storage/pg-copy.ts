/**
 * PostgreSQL `COPY … FROM STDIN` on a connection of the pool (pg-copy-streams, made for
 * node-postgres): the bulk path of the telemetry writer. The server parses one stream of text
 * rows instead of a statement's parameters, which is the cheapest way into a table it has.
 *
 * A COPY outside a transaction is one statement: every row is committed when it resolves, or
 * none (a bad row fails the whole COPY).
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import type * as PgCopyStreams from 'pg-copy-streams';

/** Runs `statement` (a `COPY … FROM STDIN`) with `text` as its data; resolves with the rows copied, once committed. */
export type CopyIn = (statement: string, text: string) => Promise<number>;

const require = createRequire(import.meta.url);
let copyStreams: typeof PgCopyStreams | undefined;

export function copyIn(pool: pg.Pool): CopyIn {
  return async (statement, text) => {
    copyStreams ??= require('pg-copy-streams') as typeof PgCopyStreams;
    const client = await pool.connect();
    let failure: Error | undefined;
    try {
      const stream = client.query(copyStreams.from(statement));
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        // 'finish' comes after the server's ReadyForQuery: the rows are committed and visible.
        stream.on('finish', resolve);
        stream.end(text);
      });
      return stream.rowCount;
    } catch (error) {
      // The connection may be mid-protocol: the pool discards it rather than lend it again.
      failure = error as Error;
      throw error;
    } finally {
      client.release(failure);
    }
  };
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPE: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * A value as a field of COPY's text format: backslash, tab, newline and carriage return escaped
 * (so no value can end a field or a row, or read as `\N`); null as `\N`, which a NOT NULL column refuses.
 */
export function copyField(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPE[c]!) : value;
}
