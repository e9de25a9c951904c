/**
 * HTTP range requests (RFC 9110 §14) for image downloads: decides from the Range and If-Range
 * headers whether to answer with the whole representation, one byte range, or 416. Only a single
 * range is served; anything else a server may ignore (several ranges, other units, bad syntax)
 * gets the whole image, which every client can use.
 */

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/i;

/** What to answer for `Range: <header>` on a representation of `size` bytes. */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = SINGLE_RANGE.exec(header.trim());
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    // A suffix range: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  // last < first makes the range invalid, which a server ignores rather than refuses.
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * Whether a Range header may be honoured given `If-Range`: only when the client's validator is
 * this entity tag, compared strongly (a weak tag or a date never matches: we send no Last-Modified).
 */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}
