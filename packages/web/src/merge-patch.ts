/**
 * The merge patch (RFC 7386, as the platform applies it to the desired state) that turns one JSON
 * object into another, and the same change as rows to read before sending: each leaf's path with
 * its value before and after (undefined: absent). Nested objects are diffed key by key; anything
 * else (arrays included) is replaced whole; a key that goes away becomes null in the patch.
 */
export type JsonObject = Record<string, unknown>;

export const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function patchBetween(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, next] of Object.entries(to)) {
    const before = from[key];
    if (same(before, next)) continue;
    patch[key] = isObject(before) && isObject(next) ? patchBetween(before, next) : next;
  }
  return patch;
}

export interface Change {
  path: string;
  before: unknown;
  after: unknown;
}

export function changesBetween(from: JsonObject, to: JsonObject, prefix = ''): Change[] {
  const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
  return keys.flatMap((key) => {
    const before = from[key];
    const after = to[key];
    if (same(before, after)) return [];
    const path = `${prefix}${key}`;
    // An object added, removed or changed is shown leaf by leaf.
    const nested =
      (isObject(before) || isObject(after)) && (isObject(before) || before === undefined) && (isObject(after) || after === undefined);
    return nested ? changesBetween(isObject(before) ? before : {}, isObject(after) ? after : {}, `${path}.`) : [{ path, before, after }];
  });
}

/** A JSON value as one line of text for a table cell; absent is an em dash. */
export const shown = (value: unknown): string => (value === undefined ? '—' : JSON.stringify(value));

/**
 * A desired state typed as JSON, read against the one held now: why it cannot be sent (not JSON,
 * not an object), or the object and its changes (none: nothing to send).
 */
export function reviewDraft(draft: string, current: JsonObject): { error: string } | { next: JsonObject; changes: Change[] } {
  let next: unknown;
  try {
    next = JSON.parse(draft);
  } catch {
    return { error: 'The desired state is not valid JSON: fix it and review again.' };
  }
  if (!isObject(next)) return { error: 'The desired state must be a JSON object ({ … }).' };
  return { next, changes: changesBetween(current, next) };
}

/** `patch` applied to `target` as RFC 7386 says (null removes a key; objects merge key by key), as a new object. */
export function applyPatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = isObject(value) ? applyPatch(isObject(result[key]) ? result[key] : {}, value) : value;
  }
  return result;
}
