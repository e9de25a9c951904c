import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { errorBody, ErrorCodes, errorReply } from './errors.js';
import { UPDATE_ERROR_CODES } from './updates.js';

const catalogue: string[] = [...Object.values(ErrorCodes), ...UPDATE_ERROR_CODES];

describe('the error catalogue', () => {
  it('holds each code once, every one dotted and lower-case', () => {
    assert.equal(new Set(catalogue).size, catalogue.length);
    for (const code of catalogue) assert.match(code, /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/, code);
  });

  it('holds every code docs/protocol.md lists for error replies', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### 3.2 Error replies'), doc.indexOf('### 3.3'));
    const listed = [...section.matchAll(/^\| (.+?) \|/gm)].flatMap((row) =>
      [...row[1]!.matchAll(/`([a-z_]+\.[a-z_]+)`/g)].map((m) => m[1]!),
    );
    assert.ok(listed.length >= 8, `found ${listed.length} codes in the table`);
    for (const code of listed) assert.ok(catalogue.includes(code), code);
  });

  it('builds the HTTP body and the MQTT reply with details only when there are some', () => {
    assert.deepEqual(errorBody('request.invalid', 'no'), { error: { code: 'request.invalid', message: 'no' } });
    assert.deepEqual(errorBody('request.invalid', 'no', { field: 'x' }), {
      error: { code: 'request.invalid', message: 'no', details: { field: 'x' } },
    });
    assert.deepEqual(errorReply('d/a/telemetry', 'payload.invalid', 'no'), {
      topic: 'd/a/telemetry',
      code: 'payload.invalid',
      message: 'no',
    });
  });
});
