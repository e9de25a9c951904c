/**
 * A writable stream that keeps what a CLI prints, for the `bulwark-agent` command line tests:
 * the text, and its JSON lines parsed (the agent prints one JSON event per line).
 */
import { Writable } from 'node:stream';

export function capture(): { stream: Writable; lines(): Record<string, unknown>[]; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
