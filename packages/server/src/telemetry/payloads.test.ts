import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encode as encodeCbor } from 'cborg';
import fc from 'fast-check';
import { DeviceMessageRefusal } from '../errors.js';
import { parseTelemetry } from './payloads.js';

/** CBOR written byte by byte (RFC 8949) by a small Python encoder, not by the library under test. */
const CBOR = {
  // {"values":{"t":21.5}}, 21.5 as a half-precision float (what C encoders emit for small values)
  one: 'a16676616c756573a16174f94d60',
  // {"ts":1764070000000,"values":{"door":"open","ok":true,"n":null,"c":-3,"f":0.1 (float64)}}
  typed: 'a26274731b0000019abac405806676616c756573a564646f6f72646f70656e626f6bf5616ef66163226166fb3fb999999999999a',
  // {"batch":[{"values":{"a":1}},{"ts":1764070000001,"values":{"a":2.5 (float32)}}]}, indefinite-length array
  batch: 'a16562617463689fa16676616c756573a1616101a26274731b0000019abac405816676616c756573a16161fa40200000ff',
};
const NOW = 1764070005000;
const cbor = (hex: string) => parseTelemetry(Buffer.from(hex, 'hex'), NOW, 'cbor');
const refusedWith = (code: string) => (error: unknown) => error instanceof DeviceMessageRefusal && error.code === code;

describe('telemetry payloads in CBOR', () => {
  it('reads the same document as JSON: one reading, typed values, a batch with an indefinite-length array', () => {
    assert.deepEqual(cbor(CBOR.one), [{ ts: NOW, values: { t: 21.5 } }]);
    assert.deepEqual(cbor(CBOR.typed), [{ ts: 1764070000000, values: { door: 'open', ok: true, n: null, c: -3, f: 0.1 } }]);
    assert.deepEqual(cbor(CBOR.batch), [
      { ts: NOW, values: { a: 1 } },
      { ts: 1764070000001, values: { a: 2.5 } },
    ]);
    // The JSON form of the first gives the same reading.
    assert.deepEqual(parseTelemetry(Buffer.from('{"values":{"t":21.5}}'), NOW), cbor(CBOR.one));
  });

  it('refuses what JSON cannot say: tags, undefined, NaN, integers beyond 2^53, duplicate or non-string keys, trailing or missing bytes', () => {
    for (const hex of [
      'a16676616c756573a16174c11a69259270', // tag 1 (epoch date)
      'a16676616c756573a16174f7', // undefined
      'a16676616c756573a16174f97e00', // NaN
      'a16676616c756573a161741bffffffffffffffff', // 2^64 - 1
      'a16676616c756573a2617401617402', // "t" twice
      'a16676616c756573a10101', // integer key
      `${CBOR.one}00`, // trailing byte
      CBOR.one.slice(0, -2), // cut short
      'ff',
    ]) {
      assert.throws(() => cbor(hex), refusedWith('payload.not_cbor'), hex);
    }
  });

  it('applies the JSON rules after decoding: byte strings, a missing "values", a bad name, a timestamp in seconds', () => {
    assert.throws(() => cbor('a16676616c756573a161744100'), refusedWith('payload.invalid')); // {"values":{"t":h'00'}}
    assert.throws(() => cbor('a16274731b0000019abac40580'), refusedWith('payload.invalid')); // {"ts":1764070000000}, no values
    assert.throws(() => cbor('a16676616c756573a1612001'), refusedWith('payload.invalid')); // {"values":{" ":1}}
    assert.throws(() => cbor('a26274731a692592706676616c756573a1617401'), refusedWith('payload.invalid_timestamp')); // "ts" in seconds
  });
});

describe('telemetry payloads under fuzzing (fast-check)', () => {
  const name = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
  const value = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 256 }),
  );
  const reading = fc.record(
    { ts: fc.integer({ min: Date.UTC(2000, 0, 1), max: NOW }), values: fc.dictionary(name, value, { minKeys: 1, maxKeys: 64 }) },
    { requiredKeys: ['values'] },
  );
  const document = fc.oneof(reading, fc.record({ batch: fc.array(reading, { minLength: 1, maxLength: 20 }) }));
  const expected = (doc: { ts?: number; values: object } | { batch: { ts?: number; values: object }[] }) =>
    ('batch' in doc ? doc.batch : [doc]).map((r) => ({ ts: r.ts ?? NOW, values: normalised(r.values) }));
  // JSON turns -0 into 0; the parser sees what the device's encoder wrote.
  const normalised = (values: object) => JSON.parse(JSON.stringify(values)) as Record<string, unknown>;

  it('reads back every well-formed document, in JSON and in CBOR', () => {
    fc.assert(
      fc.property(document, (doc) => {
        assert.deepEqual(parseTelemetry(Buffer.from(JSON.stringify(doc)), NOW, 'json'), expected(doc));
        assert.deepEqual(parseTelemetry(Buffer.from(encodeCbor(JSON.parse(JSON.stringify(doc)))), NOW, 'cbor'), expected(doc));
      }),
      { numRuns: 300 },
    );
  });

  it('answers any bytes, any JSON value and any mutation of a good payload with readings or a refusal, never another error', () => {
    const outcome = (bytes: Uint8Array, format: 'json' | 'cbor') => {
      try {
        const readings = parseTelemetry(Buffer.from(bytes), NOW, format);
        assert.ok(readings.length >= 1 && readings.length <= 1000);
      } catch (error) {
        assert.ok(error instanceof DeviceMessageRefusal, `${format} ${Buffer.from(bytes).toString('hex').slice(0, 80)}: ${String(error)}`);
        assert.match(error.code, /^payload\./);
      }
    };
    const mutated = fc
      .tuple(document, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.boolean())
      .map(([doc, flips, cbor]) => {
        const bytes = cbor ? encodeCbor(JSON.parse(JSON.stringify(doc))) : Buffer.from(JSON.stringify(doc));
        const copy = Buffer.from(bytes);
        for (const [at, byte] of flips) copy[at % copy.length] = byte;
        return { bytes: copy, format: cbor ? ('cbor' as const) : ('json' as const) };
      });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.jsonValue(), mutated, (bytes, json, m) => {
        outcome(bytes, 'json');
        outcome(bytes, 'cbor');
        outcome(Buffer.from(JSON.stringify(json) ?? 'null'), 'json');
        outcome(m.bytes, m.format);
      }),
      { numRuns: 2000 },
    );
  });
});
