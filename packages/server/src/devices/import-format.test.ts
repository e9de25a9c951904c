import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { ImportTooLargeError } from './errors.js';
import { parseImport, splitCsvLine } from './import-format.js';

const LIMITS = { maxRows: 100, maxBytes: 1 << 20 };

/** Streams text in chunks of `size` bytes, so lines and UTF-8 characters split across chunks. */
function chunked(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

const csvField = (s: string) => (/[",]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

describe('import parsing', () => {
  it('numbers JSON lines by their line in the file, skipping blank lines and keeping bad JSON as a row error', async () => {
    const rows = await parseImport(chunked('{"serial":"A"}\r\n\n{"serial":"é"}\nnot json\n{"serial":"C"}', 3), 'ndjson', LIMITS);
    assert.deepEqual(rows, [
      { line: 1, value: { serial: 'A' } },
      { line: 3, value: { serial: 'é' } },
      { line: 4, error: 'is not valid JSON' },
      { line: 5, value: { serial: 'C' } },
    ]);
  });

  it('reads CSV with a header, quoted fields, tags and JSON attributes; counts the header as line 1', async () => {
    const csv = 'serial,product,tags,attributes,group\nS-1,Sensor,a;b,"{""color"":""red, dark""}",lab\nS-2,Sensor,,,\n"S-3,x",Sensor,,,\n';
    const rows = await parseImport(chunked(csv, 5), 'csv', LIMITS);
    assert.deepEqual(rows, [
      { line: 2, value: { serial: 'S-1', product: 'Sensor', tags: ['a', 'b'], attributes: { color: 'red, dark' }, group: 'lab' } },
      { line: 3, value: { serial: 'S-2', product: 'Sensor' } },
      { line: 4, value: { serial: 'S-3,x', product: 'Sensor' } },
    ]);
  });

  it('reports an unknown CSV column and a row with the wrong number of fields', async () => {
    assert.match(((await parseImport(chunked('serial,owner\nA,b\n', 64), 'csv', LIMITS))[0] as { error: string }).error, /unknown: owner/);
    assert.deepEqual(await parseImport(chunked('serial,product\nA\n', 64), 'csv', LIMITS), [
      { line: 2, error: 'has 1 fields; the header names 2' },
    ]);
  });

  it('stops at the row limit and at the byte limit', async () => {
    const lines = Array.from({ length: 4 }, (_, i) => JSON.stringify({ serial: `S${i}` })).join('\n');
    await assert.rejects(
      parseImport(chunked(lines, 8), 'ndjson', { maxRows: 3, maxBytes: 1 << 20 }),
      (e: unknown) => e instanceof ImportTooLargeError && e.status === 413,
    );
    await assert.rejects(
      parseImport(chunked(lines, 8), 'ndjson', { maxRows: 100, maxBytes: 20 }),
      (e: unknown) => e instanceof ImportTooLargeError && e.details?.limitBytes === 20,
    );
  });

  it('splits any quoted CSV record back into the fields it was made of', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string().filter((s) => !/[\r\n]/.test(s)),
          { minLength: 1, maxLength: 8 },
        ),
        (fields) => {
          assert.deepEqual(splitCsvLine(fields.map(csvField).join(',')), fields);
        },
      ),
    );
  });
});
