import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { UpdateMetadata } from '@bulwark/protocol';
import { parseUpdateMetadata } from './check-metadata.js';
import { MetadataInvalidError } from './errors.js';

const GOOD: UpdateMetadata = {
  director: { roots: ['{"signed":{"version":2}}'], latestRoot: 2, targets: '{"signed":{}}' },
  repository: { latestRoot: 1, files: { 'timestamp.json': '{"signed":{}}', '3.snapshot.json': '{"signed":{}}' } },
};

const refusal = (answer: unknown) => {
  try {
    parseUpdateMetadata(Buffer.from(typeof answer === 'string' ? answer : JSON.stringify(answer)));
    return null;
  } catch (error) {
    assert.ok(error instanceof MetadataInvalidError, `not a metadata refusal: ${String(error)}`);
    assert.equal(error.code, 'update.metadata_invalid');
    return error.message;
  }
};

describe("the update check's one answer: its shape is checked before any part is used", () => {
  it('accepts a well-formed answer as it is', () => {
    assert.deepEqual(parseUpdateMetadata(Buffer.from(JSON.stringify(GOOD))), GOOD);
  });

  it('names what is wrong with a malformed one', () => {
    const cases: [unknown, RegExp][] = [
      ['{"director":', /not JSON/],
      [null, /no director part/],
      [[], /no director part/],
      [{ ...GOOD, director: { ...GOOD.director, roots: [1] } }, /director\.roots/],
      [{ ...GOOD, director: { ...GOOD.director, latestRoot: 0 } }, /director\.latestRoot/],
      [{ ...GOOD, director: { ...GOOD.director, latestRoot: 1.5 } }, /director\.latestRoot/],
      [{ ...GOOD, director: { ...GOOD.director, targets: { signed: {} } } }, /director\.targets/],
      [{ director: GOOD.director }, /no repository part/],
      [{ ...GOOD, repository: { ...GOOD.repository, latestRoot: -1 } }, /repository\.latestRoot/],
      [{ ...GOOD, repository: { ...GOOD.repository, files: ['x'] } }, /repository\.files/],
      [{ ...GOOD, repository: { ...GOOD.repository, files: { 'timestamp.json': { signed: {} } } } }, /repository\.files/],
    ];
    for (const [answer, message] of cases) assert.match(refusal(answer) ?? 'accepted', message, JSON.stringify(answer));
  });

  it('answers any mutation of a good answer with a metadata refusal or an answer of the right shape, never another error', () => {
    const text = JSON.stringify(GOOD);
    fc.assert(
      fc.property(fc.nat(text.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(text.length), (at, byte, cut) => {
        const bytes = Buffer.from(text);
        bytes[at] = byte;
        const mutated = bytes.subarray(0, Math.max(cut, 1)).toString('latin1');
        if (refusal(mutated) === null) {
          const parsed = parseUpdateMetadata(Buffer.from(mutated, 'latin1'));
          assert.ok(Array.isArray(parsed.director.roots) && typeof parsed.director.targets === 'string');
          assert.ok(Object.values(parsed.repository.files).every((file) => typeof file === 'string'));
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
