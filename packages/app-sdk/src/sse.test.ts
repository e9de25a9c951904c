import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventStreamParser, readEventStream, type ServerSentEvent } from './sse.js';

const STREAM = ': keep-alive\n\nevent: telemetry\ndata: {"t":1}\nid: 7\n\ndata: line one\r\ndata: line two\r\n\r\nevent: empty\n\n';
const EXPECTED: ServerSentEvent[] = [
  { event: 'telemetry', data: '{"t":1}', id: '7' },
  { event: 'message', data: 'line one\nline two', id: '7' },
];

test('parses events, comments, multi-line data and CRLF', () => {
  assert.deepEqual(new EventStreamParser().push(STREAM), EXPECTED);
});

test('gives the same events however the stream is cut into chunks', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: STREAM.length }), { maxLength: 12 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const parser = new EventStreamParser();
      const events: ServerSentEvent[] = [];
      let from = 0;
      for (const point of [...points, STREAM.length]) {
        events.push(...parser.push(STREAM.slice(from, point)));
        from = point;
      }
      assert.deepEqual(events, EXPECTED);
    }),
  );
});

test('reads a byte stream to its end', async () => {
  const bytes = new TextEncoder().encode(STREAM);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // A multi-byte boundary: split inside the stream at every 5 bytes.
      for (let i = 0; i < bytes.length; i += 5) controller.enqueue(bytes.slice(i, i + 5));
      controller.close();
    },
  });
  const events: ServerSentEvent[] = [];
  await readEventStream(body, (event) => events.push(event));
  assert.deepEqual(events, EXPECTED);
});
