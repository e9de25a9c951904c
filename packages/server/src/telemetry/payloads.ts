/**
 * The telemetry payload a device publishes (docs/protocol.md), checked by hand on the hot path so
 * a bad message costs microseconds and gets a precise answer:
 *
 *   { "ts": 1764070000000, "values": { "temperature": 21.5, "door": "open" } }       one reading
 *   { "batch": [ { "ts": …, "values": { … } }, … ] }                                  up to 1,000
 *
 * `ts` (milliseconds since the epoch, optional) is the device's time of the reading; without it
 * the platform's receive time is used. Values are numbers, booleans, short strings or null.
 *
 * The same document may come as CBOR (RFC 8949) for constrained devices: decoded by cborg with
 * everything JSON cannot say refused (tags, byte strings, undefined, NaN and infinities, integers
 * beyond 2^53, non-string or duplicate map keys), then checked by the same rules.
 */
import type { PayloadFormat } from '@bulwark/protocol';
import { decode as decodeCbor } from 'cborg';
import { DeviceMessageRefusal } from '../errors.js';

export const MAX_BATCH = 1000;
export const MAX_VALUES = 64;
export const MAX_STRING = 256;
/** Device clocks drift; a reading stamped further ahead than this is refused. */
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;
const EARLIEST = Date.UTC(2000, 0, 1);
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface Reading {
  ts: number;
  values: Record<string, number | boolean | string | null>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const CBOR_OPTIONS = {
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
  tags: [],
};

/** Parses a telemetry payload into readings, or throws DeviceMessageRefusal saying what is wrong and where. */
export function parseTelemetry(payload: Buffer, receivedAt: number, format: PayloadFormat = 'json'): Reading[] {
  let body: unknown;
  if (format === 'cbor') {
    try {
      body = decodeCbor(payload, CBOR_OPTIONS);
    } catch (error) {
      throw new DeviceMessageRefusal(
        'payload.not_cbor',
        `Payload is not CBOR this protocol accepts: ${(error as Error).message.replace(/^CBOR decode error: /, '').slice(0, 200)}`,
      );
    }
  } else {
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new DeviceMessageRefusal('payload.not_json', 'Payload is not valid JSON');
    }
  }
  if (!isObject(body)) throw new DeviceMessageRefusal('payload.invalid', 'Payload must be a JSON object');
  if ('batch' in body) {
    if (Object.keys(body).length !== 1) throw new DeviceMessageRefusal('payload.invalid', 'A batch payload holds only "batch"');
    const batch = body.batch;
    if (!Array.isArray(batch) || batch.length === 0 || batch.length > MAX_BATCH)
      throw new DeviceMessageRefusal('payload.invalid', `"batch" must be an array of 1 to ${MAX_BATCH} readings`);
    return batch.map((item, i) => reading(item, receivedAt, `batch[${i}]`));
  }
  return [reading(body, receivedAt, '')];
}

/** Where in the payload a field is, for error messages (built only when there is an error). */
function fieldPath(at: string, field: string): string {
  return at ? `${at}.${field}` : field;
}

function reading(item: unknown, receivedAt: number, at: string): Reading {
  if (!isObject(item)) throw new DeviceMessageRefusal('payload.invalid', `${at || 'payload'} must be an object`);
  // for…in rather than Object.keys: no array per reading (JSON.parse and cborg make plain objects, nothing inherited).
  for (const key in item) {
    if (key !== 'ts' && key !== 'values') throw new DeviceMessageRefusal('payload.invalid', `Unknown field "${fieldPath(at, key)}"`);
  }
  let ts = receivedAt;
  if (item.ts !== undefined) {
    if (typeof item.ts !== 'number' || !Number.isInteger(item.ts))
      throw new DeviceMessageRefusal('payload.invalid', `"${fieldPath(at, 'ts')}" must be an integer of milliseconds since the epoch`);
    if (item.ts < EARLIEST || item.ts > receivedAt + MAX_FUTURE_MS)
      throw new DeviceMessageRefusal(
        'payload.invalid_timestamp',
        `"${fieldPath(at, 'ts')}" is outside 2000-01-01 … now + 24 h (device clock wrong?)`,
      );
    ts = item.ts;
  }
  const values = item.values;
  if (!isObject(values)) throw new DeviceMessageRefusal('payload.invalid', `"${fieldPath(at, 'values')}" must be an object`);
  const names = Object.keys(values);
  if (names.length === 0 || names.length > MAX_VALUES)
    throw new DeviceMessageRefusal('payload.invalid', `"${fieldPath(at, 'values')}" must hold 1 to ${MAX_VALUES} values`);
  for (const name of names) {
    if (!NAME.test(name))
      throw new DeviceMessageRefusal('payload.invalid', `Value name "${name.slice(0, 70)}" must be 1-64 of A-Z a-z 0-9 _ . : -`);
    const v = values[name];
    const fits =
      v === null ||
      typeof v === 'boolean' ||
      (typeof v === 'number' && Number.isFinite(v)) ||
      (typeof v === 'string' && v.length <= MAX_STRING);
    if (!fits)
      throw new DeviceMessageRefusal(
        'payload.invalid',
        `"${fieldPath(at, `values.${name}`)}" must be a finite number, a boolean, null or a string of at most ${MAX_STRING} characters`,
      );
  }
  return { ts, values: values as Reading['values'] };
}
