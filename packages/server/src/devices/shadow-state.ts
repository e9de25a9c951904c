/**
 * The device shadow's JSON rules, pure: a state is a JSON object; a patch merges into it key by
 * key (nested objects merge, `null` deletes, anything else replaces — RFC 7386 merge patch), and
 * the delta is what of the desired state the reported one does not match yet.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const MAX_STATE_BYTES = 8 * 1024;
export const MAX_DEPTH = 8;
const KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

export class StateError extends Error {
  constructor(message: string) {
    super(message);
  }
}

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a patch (or a state) for shape, key names and depth; throws StateError naming the path. */
export function checkPatch(value: unknown, path = 'state', depth = 1): asserts value is JsonObject {
  if (!isObject(value)) throw new StateError(`"${path}" must be a JSON object`);
  if (depth > MAX_DEPTH) throw new StateError(`"${path}" is nested deeper than ${MAX_DEPTH} levels`);
  for (const [key, child] of Object.entries(value)) {
    if (!KEY.test(key)) throw new StateError(`Key "${key.slice(0, 70)}" in "${path}" must be 1-64 of A-Z a-z 0-9 _ . : -`);
    // JSON.parse makes `__proto__` an ordinary key, but merging it would set a prototype and lose it.
    if (key === '__proto__') throw new StateError(`Key "__proto__" in "${path}" is reserved`);
    if (isObject(child)) checkPatch(child, `${path}.${key}`, depth + 1);
    else if (typeof child === 'number' && !Number.isFinite(child)) throw new StateError(`"${path}.${key}" must be a finite number`);
  }
}

/** The state after applying a merge patch (neither argument is changed). */
export function mergePatch(state: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...state };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) {
      const merged = mergePatch(isObject(out[key]) ? (out[key] as JsonObject) : {}, value);
      if (Object.keys(merged).length === 0) delete out[key];
      else out[key] = merged;
    } else out[key] = value;
  }
  return out;
}

/** The parts of `desired` that `reported` does not match (objects compared key by key). */
export function delta(desired: JsonObject, reported: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported[key];
    if (isObject(want)) {
      const inner = delta(want, isObject(have) ? have : {});
      if (Object.keys(inner).length > 0) out[key] = inner;
    } else if (!sameJson(want, have)) out[key] = want;
  }
  return out;
}

function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => sameJson(a[k], b[k]));
  }
  return false;
}

/** Serializes a state, refusing one larger than the limit. */
export function serializeState(state: JsonObject, what: string): string {
  const text = JSON.stringify(state);
  if (Buffer.byteLength(text) > MAX_STATE_BYTES) throw new StateError(`The ${what} state would exceed ${MAX_STATE_BYTES} bytes`);
  return text;
}
