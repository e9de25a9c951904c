/**
 * Reads a bulk import as it streams in, JSON lines or CSV, into rows numbered by their line in the
 * file, without holding more than one line of text at a time. Stops as soon as the byte or row
 * limit is passed. A line that does not parse becomes a row error (reported with the others);
 * the rows themselves are checked by the service.
 *
 * CSV: a header line naming the columns (serial, productId or product, group, tags, attributes),
 * one device a line, RFC 4180 quoting; `tags` separated by `;`, `attributes` a JSON object.
 */
import { StringDecoder } from 'node:string_decoder';
import { ImportTooLargeError } from './errors.js';

export type ImportFormat = 'ndjson' | 'csv';
export type ImportRow = { line: number; value: unknown } | { line: number; error: string };

export interface ImportLimits {
  maxRows: number;
  maxBytes: number;
}

export const DEFAULT_MAX_ROWS = 100_000;
const CSV_COLUMNS = new Set(['serial', 'productId', 'product', 'group', 'tags', 'attributes']);

export const IMPORT_MEDIA_TYPES: Record<string, ImportFormat> = { 'application/x-ndjson': 'ndjson', 'text/csv': 'csv' };

async function* lines(source: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let bytes = 0;
  let pending = '';
  for await (const chunk of source) {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (bytes > maxBytes) throw new ImportTooLargeError({ limitBytes: maxBytes });
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      yield pending.slice(0, newline).replace(/\r$/, '');
      pending = pending.slice(newline + 1);
    }
  }
  pending += decoder.end();
  if (pending !== '') yield pending.replace(/\r$/, '');
}

/** Splits one CSV record (no line breaks inside quotes); null when a quote is left open. */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) return null;
  fields.push(field);
  return fields;
}

function csvRow(header: string[], fields: string[]): { value: Record<string, unknown> } | { error: string } {
  if (fields.length !== header.length) return { error: `has ${fields.length} fields; the header names ${header.length}` };
  const value: Record<string, unknown> = {};
  for (const [i, column] of header.entries()) {
    const text = fields[i]!;
    if (text === '') continue;
    if (column === 'tags')
      value.tags = text
        .split(';')
        .map((t) => t.trim())
        .filter(Boolean);
    else if (column === 'attributes') {
      try {
        value.attributes = JSON.parse(text) as unknown;
      } catch {
        return { error: 'attributes is not valid JSON' };
      }
    } else value[column] = text;
  }
  return { value };
}

export async function parseImport(
  source: AsyncIterable<Buffer | string>,
  format: ImportFormat,
  limits: ImportLimits,
): Promise<ImportRow[]> {
  const rows: ImportRow[] = [];
  let lineNumber = 0;
  let header: string[] | null = null;
  for await (const line of lines(source, limits.maxBytes)) {
    lineNumber++;
    if (line.trim() === '') continue;
    if (format === 'csv' && header === null) {
      const names = splitCsvLine(line)?.map((n) => n.trim());
      const unknown = names?.filter((n) => !CSV_COLUMNS.has(n)) ?? [];
      if (!names || unknown.length > 0 || !names.includes('serial')) {
        rows.push({
          line: lineNumber,
          error: `the header must name columns among ${[...CSV_COLUMNS].join(', ')} including serial${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
        });
        return rows;
      }
      header = names;
      continue;
    }
    if (rows.length >= limits.maxRows) throw new ImportTooLargeError({ maxRows: limits.maxRows });
    if (format === 'ndjson') {
      try {
        rows.push({ line: lineNumber, value: JSON.parse(line) as unknown });
      } catch {
        rows.push({ line: lineNumber, error: 'is not valid JSON' });
      }
    } else {
      const fields = splitCsvLine(line);
      rows.push({ line: lineNumber, ...(fields ? csvRow(header!, fields) : { error: 'has an unterminated quoted field' }) });
    }
  }
  return rows;
}
