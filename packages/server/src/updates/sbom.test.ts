import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ValidationError } from '../errors.js';
import { REPOSITORY } from '../testing/repository.js';
import { SBOM_LIMITS, validateSbom } from './sbom.js';

const REPO_ROOT = `${REPOSITORY}/`;

/** The repository's own SBOM: CI writes sbom.cdx.json with `npm run sbom`; otherwise npm makes it now. */
function repositorySbom(): unknown {
  const file = `${REPO_ROOT}sbom.cdx.json`;
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  return JSON.parse(
    execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--omit', 'dev'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    }),
  );
}

const SHA256 = 'a'.repeat(64);

function sample(): any {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79',
    version: 1,
    metadata: { timestamp: '2026-11-25T10:00:00Z', component: { type: 'firmware', name: 'sensor-fw', version: '1.4.0', 'bom-ref': 'fw' } },
    components: [
      {
        type: 'library',
        name: 'mbedtls',
        version: '3.6.2',
        purl: 'pkg:generic/mbedtls@3.6.2',
        'bom-ref': 'mbedtls',
        hashes: [{ alg: 'SHA-256', content: SHA256 }],
      },
      {
        type: 'operating-system',
        name: 'zephyr',
        version: '3.7.0',
        purl: 'pkg:github/zephyrproject-rtos/zephyr@v3.7.0',
        'bom-ref': 'zephyr',
        components: [{ type: 'library', name: 'lwm2m', 'bom-ref': 'lwm2m' }],
      },
      { type: 'file', name: 'bootloader.bin' },
    ],
    dependencies: [{ ref: 'fw', dependsOn: ['mbedtls', 'zephyr'] }],
  };
}

/** The message a document gets refused with (asserting the refusal is a ValidationError with the SBOM code). */
function refusal(document: unknown): string {
  try {
    validateSbom(document);
  } catch (error) {
    assert.ok(error instanceof ValidationError, `not a ValidationError: ${String(error)}`);
    assert.equal(error.code, 'update.sbom_invalid');
    assert.equal(error.status, 400);
    return error.message;
  }
  assert.fail('the document was accepted');
}

const mutated = (change: (doc: any) => void) => {
  const doc = sample();
  change(doc);
  return doc;
};

describe('CycloneDX SBOM validation', () => {
  it("accepts the repository's own SBOM", () => {
    const summary = validateSbom(repositorySbom());
    assert.ok(['1.4', '1.5', '1.6'].includes(summary.specVersion));
    assert.ok(summary.components > 10, `${summary.components} components`);
  });

  it('accepts a well-formed document, as an object or as JSON text, counting nested components', () => {
    assert.deepEqual(validateSbom(sample()), { specVersion: '1.5', components: 4 });
    assert.deepEqual(validateSbom(JSON.stringify(sample())), { specVersion: '1.5', components: 4 });
    assert.deepEqual(validateSbom({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 3, components: [] }), {
      specVersion: '1.6',
      components: 0,
    });
  });

  it('names the JSON path of the first problem', () => {
    const cases: [string, (doc: any) => void, string][] = [
      ['bomFormat', (d) => (d.bomFormat = 'SPDX'), 'bomFormat must be "CycloneDX"'],
      ['spec version', (d) => (d.specVersion = '1.3'), 'specVersion must be one of 1.4, 1.5, 1.6'],
      ['version zero', (d) => (d.version = 0), 'version must be an integer of at least 1'],
      ['version fraction', (d) => (d.version = 1.5), 'version must be an integer of at least 1'],
      ['version missing', (d) => delete d.version, 'version must be an integer of at least 1'],
      ['serial number', (d) => (d.serialNumber = 'urn:uuid:not-a-uuid'), 'serialNumber must be "urn:uuid:" and an RFC 4122 UUID'],
      ['metadata', (d) => (d.metadata = []), 'metadata must be an object'],
      ['components missing', (d) => delete d.components, 'components must be an array'],
      ['component not object', (d) => (d.components[2] = 'x'), 'components[2] must be an object'],
      ['type', (d) => (d.components[0].type = 'gadget'), 'components[0].type must be one of application'],
      ['type of a later spec', (d) => ((d.specVersion = '1.4'), (d.components[0].type = 'platform')), 'components[0].type must be one of'],
      ['name', (d) => delete d.components[2].name, 'components[2].name must be a non-empty string'],
      ['version type', (d) => (d.components[0].version = 3), 'components[0].version must be a string'],
      ['purl', (d) => (d.components[1].purl = 'npm/zephyr'), 'components[1].purl must start with "pkg:"'],
      ['bom-ref repeated', (d) => (d.components[2]['bom-ref'] = 'mbedtls'), 'components[2]["bom-ref"] repeats "mbedtls"'],
      ['bom-ref repeats the described component', (d) => (d.components[0]['bom-ref'] = 'fw'), 'components[0]["bom-ref"] repeats "fw"'],
      ['hash algorithm', (d) => (d.components[0].hashes[0].alg = 'SHA-999'), 'components[0].hashes[0].alg must be one of'],
      [
        'hash length',
        (d) => (d.components[0].hashes[0].alg = 'SHA-512'),
        'components[0].hashes[0].content must be the SHA-512 digest in hex (128 characters)',
      ],
      [
        'hash not hex',
        (d) => (d.components[0].hashes[0].content = 'z'.repeat(64)),
        'components[0].hashes[0].content must be the SHA-256 digest',
      ],
      [
        'nested component',
        (d) => (d.components[1].components[0].purl = 'lwm2m'),
        'components[1].components[0].purl must start with "pkg:"',
      ],
      ['metadata component', (d) => (d.metadata.component.type = 'firmwares'), 'metadata.component.type must be one of'],
      [
        'long string anywhere',
        (d) => (d.components[2].description = 'x'.repeat(SBOM_LIMITS.stringBytes + 1)),
        'components[2].description must be at most 2048 bytes',
      ],
      ['long string in bytes', (d) => (d.metadata.component.name = 'é'.repeat(1025)), 'metadata.component.name must be at most 2048 bytes'],
    ];
    for (const [what, change, message] of cases) {
      const got = refusal(mutated(change));
      assert.ok(got.startsWith(message), `${what}: got "${got}", expected it to start with "${message}"`);
    }
    assert.equal(refusal('{"bomFormat":'), 'the document is not valid JSON');
    assert.equal(refusal([sample()]), 'the document must be a JSON object (a CycloneDX BOM)');
    assert.equal(refusal(null), 'the document must be a JSON object (a CycloneDX BOM)');
  });

  it('refuses more than 20,000 components, counting nested ones, and nesting deeper than the limit', () => {
    const many = mutated(
      (d) => (d.components = Array.from({ length: SBOM_LIMITS.components }, (_, i) => ({ type: 'library', name: `c${i}` }))),
    );
    assert.match(refusal(many), /^components\[\d+\] is one component too many: at most 20000/);
    many.components = many.components.slice(0, SBOM_LIMITS.components - 4);
    assert.equal(validateSbom(many).components, SBOM_LIMITS.components - 4, 'the described component counts towards the limit too');

    let deep: any = { type: 'library', name: 'leaf' };
    for (let i = 0; i < 100; i++) deep = { type: 'library', name: `level${i}`, components: [deep] };
    assert.match(refusal(mutated((d) => (d.components = [deep]))), /is nested deeper than 32 levels$/);
  });

  it('throws nothing but a ValidationError for any mutation of a valid document', () => {
    const base = sample();
    const paths: (string | number)[][] = [];
    const walk = (value: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    };
    walk(base, []);
    const mutation = fc.record({
      at: fc.nat({ max: paths.length - 1 }),
      action: fc.constantFrom('replace', 'delete', 'add'),
      key: fc.oneof(fc.string(), fc.constantFrom('components', 'hashes', 'bom-ref', 'type', 'purl', '__proto__', 'constructor')),
      value: fc.anything({ withNullPrototype: true, withBoxedValues: true, withSparseArray: true, withBigInt: true }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const doc: any = structuredClone(base);
        for (const { at, action, key, value } of mutations) {
          const path = paths[at]!;
          if (path.length === 0) continue;
          let parent: any = doc;
          for (const step of path.slice(0, -1)) parent = parent?.[step];
          if (!parent || typeof parent !== 'object') continue;
          const last = path[path.length - 1]!;
          try {
            if (action === 'delete') delete parent[last];
            else if (action === 'add' && parent[last] && typeof parent[last] === 'object') parent[last][key] = value;
            else parent[last] = value;
          } catch {
            // JavaScript itself refuses some mutations (an array's length set to a non-number): skip them.
          }
        }
        try {
          validateSbom(doc);
        } catch (error) {
          if (!(error instanceof ValidationError) || error.code !== 'update.sbom_invalid') throw error;
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBoxedValues: true, withBigInt: true }), (value) => {
        try {
          validateSbom(value);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
        }
      }),
    );
  });
});
