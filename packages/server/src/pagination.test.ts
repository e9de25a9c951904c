/** The one pagination helper: cursors round-trip, a foreign or malformed cursor is refused with one code, one extra row decides the next page. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes } from '@bulwark/protocol';
import { ValidationError } from './errors.js';
import { decodeCursor, encodeCursor, pageOf } from './pagination.js';

const isPair = (v: unknown): v is [number, string] =>
  Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string';

describe('pagination', () => {
  it('round-trips a position through an opaque URL-safe cursor', () => {
    const cursor = encodeCursor([1_700_000_000_000, 'a/b+c']);
    assert.match(cursor, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeCursor(cursor, isPair), [1_700_000_000_000, 'a/b+c']);
  });

  it('refuses a malformed or foreign cursor with 400 request.invalid naming the field', () => {
    for (const bad of ['not-a-cursor', '', '%%%', encodeCursor({ s: 'x' }), encodeCursor([1.5, 'x']), encodeCursor(null)]) {
      assert.throws(
        () => decodeCursor(bad, isPair, 'before'),
        (error: unknown) =>
          error instanceof ValidationError &&
          error.code === ErrorCodes.requestInvalid &&
          error.status === 400 &&
          (error.details as { field?: string }).field === 'before',
        bad,
      );
    }
  });

  it('gives a next cursor only when the store returned one row more than the page', () => {
    assert.deepEqual(
      pageOf([1, 2, 3], 2, (last) => encodeCursor(last)),
      { page: [1, 2], nextCursor: encodeCursor(2) },
    );
    assert.deepEqual(
      pageOf([1, 2], 2, (last) => last),
      { page: [1, 2], nextCursor: null },
    );
    assert.deepEqual(
      pageOf([], 2, (last) => last),
      { page: [], nextCursor: null },
    );
  });
});
