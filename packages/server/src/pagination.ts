/**
 * One way to page a list: the store is asked for one row more than the page, so whether a next
 * page exists is known without a count, and the next page's cursor is an opaque token (base64url
 * JSON of the last row's sort key) that is checked when it comes back. A cursor the API did not
 * hand out is refused with one answer: 400 `request.invalid`.
 */
import { ValidationError } from './errors.js';

/** The token for a position (the sort key of the last row of a page). */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** The position a token stands for; a malformed or foreign token is a ValidationError naming `field`. */
export function decodeCursor<T>(cursor: string, isPosition: (value: unknown) => value is T, field = 'cursor'): T {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isPosition(value)) return value;
  } catch {
    // Falls through to the one answer for every malformed cursor.
  }
  throw new ValidationError(`${field} must be the nextCursor of a previous page`, { field });
}

/**
 * Splits the `limit + 1` rows a store returned into the page and the cursor of the next one
 * (null on the last page). `cursorOf` names the last row's position.
 */
export function pageOf<Row, Cursor>(
  rows: readonly Row[],
  limit: number,
  cursorOf: (last: Row) => Cursor,
): { page: Row[]; nextCursor: Cursor | null } {
  const page = rows.slice(0, limit);
  return { page, nextCursor: rows.length > limit ? cursorOf(page[page.length - 1]!) : null };
}
