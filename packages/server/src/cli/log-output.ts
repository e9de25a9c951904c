/**
 * Where a serving node's logs go: standard error, so that standard output carries only the text a
 * person reads at start (URL, one-time password, CA path). On a terminal each pino JSON line is
 * rewritten as one short human line (time, level, message, request, status, the other fields as
 * key=value); elsewhere the JSON lines go out unchanged, for a log collector.
 */
import { Writable } from 'node:stream';

const LEVELS: Record<number, [name: string, color: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 36],
  30: ['INFO', 32],
  40: ['WARN', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
};
/** Fields shown in their own way, or not at all (pino's bookkeeping). */
const SHOWN_APART = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'req', 'res', 'responseTime', 'err']);

type LogEntry = {
  level?: number;
  time?: number;
  msg?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  responseTime?: number;
  err?: { stack?: string; message?: string };
  [field: string]: unknown;
};

/** One pino JSON line as a human line; a line that is not JSON is returned as it is. */
export function formatLogLine(line: string, color: boolean): string {
  let entry: LogEntry;
  try {
    entry = JSON.parse(line) as LogEntry;
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null) return line;
  const [name, code] = LEVELS[entry.level ?? 30] ?? ['LOG', 0];
  const level = color ? `\x1b[${code}m${name.padEnd(5)}\x1b[0m` : name.padEnd(5);
  const time = new Date(entry.time ?? Date.now()).toTimeString().slice(0, 8);
  const parts = [time, level, entry.msg ?? ''];
  if (entry.req) parts.push(`${entry.req.method ?? ''} ${entry.req.url ?? ''}`);
  if (entry.res?.statusCode !== undefined) parts.push(String(entry.res.statusCode));
  if (typeof entry.responseTime === 'number') parts.push(`${entry.responseTime.toFixed(1)} ms`);
  for (const [field, value] of Object.entries(entry)) {
    if (!SHOWN_APART.has(field)) parts.push(`${field}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  const text = parts.filter(Boolean).join(' ');
  const stack = entry.err?.stack ?? entry.err?.message;
  return stack ? `${text}\n    ${stack.replace(/\n/g, '\n    ')}` : text;
}

/** The stream a node's logger writes to: `terminal` itself (JSON), or a formatter in front of it when it is a TTY. */
export function logDestination(terminal: NodeJS.WriteStream = process.stderr): NodeJS.WritableStream {
  if (!terminal.isTTY) return terminal;
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line) terminal.write(formatLogLine(line, true) + '\n');
      done();
    },
  });
}
