import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { formatLogLine, logDestination } from './log-output.js';

/** What pino writes for `log`, as one JSON line. */
function pinoLine(log: (logger: pino.Logger) => void): string {
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
  log(pino({ base: { pid: 1, hostname: 'node-1' } }, sink));
  return lines.join('').trim();
}

describe('log output of a serving node', () => {
  it('turns a request line into time, level, message, request, status and duration, with the other fields as key=value', () => {
    const line = pinoLine((log) =>
      log.info(
        { reqId: 'r-1', req: { method: 'GET', url: '/healthz' }, res: { statusCode: 200 }, responseTime: 1.234 },
        'request completed',
      ),
    );
    const text = formatLogLine(line, false);
    assert.match(text, /^\d{2}:\d{2}:\d{2} INFO {2}request completed GET \/healthz 200 1\.2 ms reqId=r-1$/);
    assert.doesNotMatch(text, /hostname|pid|"level"/);
  });

  it('shows an error with its stack under the line, and colours the level only when asked', () => {
    const line = pinoLine((log) => log.error({ err: new Error('disk full'), component: 'sqlite' }, 'checkpoint failed'));
    const plain = formatLogLine(line, false);
    assert.match(plain, /ERROR checkpoint failed component=sqlite\n {4}Error: disk full\n {8}at /);
    assert.ok(formatLogLine(line, true).includes('\u001b[31mERROR\u001b[0m'), 'the level in red');
  });

  it('passes a line that is not JSON through unchanged', () => {
    assert.equal(formatLogLine('not json {', false), 'not json {');
  });

  it('writes JSON unchanged where the output is no terminal, and human lines on a terminal, whole lines even when split', () => {
    const pipe = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    assert.equal(logDestination(pipe), pipe);

    const written: string[] = [];
    const terminal = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    (terminal as unknown as PassThrough).on('data', (chunk: Buffer) => written.push(chunk.toString()));
    const destination = logDestination(terminal);
    const line = pinoLine((log) => log.warn('slow query'));
    destination.write(line.slice(0, 10));
    destination.write(`${line.slice(10)}\n`);
    assert.equal(written.length, 1);
    assert.match(written[0]!, /WARN .*slow query\n$/);
  });
});
