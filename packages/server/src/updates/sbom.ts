/**
 * CycloneDX JSON SBOM validation for releases: the fields a later vulnerability assessment reads
 * (spec version, components with type, name, version, purl, hashes, unique bom-refs) must be
 * well formed, and the document must stay within bounds a server can afford to keep and walk.
 * The first problem is reported by its JSON path, e.g. `components[3].purl must start with "pkg:"`.
 * Fields this module does not check are kept as they are (CycloneDX has many).
 */
import { ValidationError } from '../errors.js';

export interface SbomSummary {
  specVersion: string;
  components: number;
}

export const SBOM_LIMITS = { components: 20_000, stringBytes: 2048, depth: 32 } as const;

const TYPES_1_4 = ['application', 'framework', 'library', 'container', 'operating-system', 'device', 'firmware', 'file'];
const TYPES_1_5 = [...TYPES_1_4, 'platform', 'device-driver', 'machine-learning-model', 'data'];
/** Component types by spec version (each version only adds). */
const COMPONENT_TYPES: Record<string, ReadonlySet<string>> = {
  '1.4': new Set(TYPES_1_4),
  '1.5': new Set(TYPES_1_5),
  '1.6': new Set([...TYPES_1_5, 'cryptographic-asset']),
};

/** Hash algorithms and the hex length of their digest (BLAKE3 has a variable output). */
const HASH_HEX_LENGTHS: Record<string, readonly number[]> = {
  MD5: [32],
  'SHA-1': [40],
  'SHA-256': [64],
  'SHA-384': [96],
  'SHA-512': [128],
  'SHA3-256': [64],
  'SHA3-384': [96],
  'SHA3-512': [128],
  'BLAKE2b-256': [64],
  'BLAKE2b-384': [96],
  'BLAKE2b-512': [128],
  BLAKE3: [32, 40, 64, 96, 128],
};

const SERIAL_NUMBER = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/;
const HEX = /^[0-9a-fA-F]+$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

type Json = Record<string, unknown>;

function invalid(path: string, problem: string): never {
  throw new ValidationError(`${path} ${problem}`, { path }, 'update.sbom_invalid');
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (IDENTIFIER.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Bounds the whole document first, so nothing later walks something unreasonably deep or large. */
function checkBounds(value: unknown, path: string, depth: number): void {
  if (typeof value === 'string') {
    if (Buffer.byteLength(value, 'utf8') > SBOM_LIMITS.stringBytes)
      invalid(path || 'the document', `must be at most ${SBOM_LIMITS.stringBytes} bytes`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth >= SBOM_LIMITS.depth) invalid(path, `is nested deeper than ${SBOM_LIMITS.depth} levels`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkBounds(value[i], child(path, i), depth + 1);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (Buffer.byteLength(key, 'utf8') > SBOM_LIMITS.stringBytes)
      invalid(path || 'the document', `has a field name longer than ${SBOM_LIMITS.stringBytes} bytes`);
    checkBounds(item, child(path, key), depth + 1);
  }
}

class ComponentChecker {
  count = 0;
  private readonly refs = new Set<string>();

  constructor(private readonly types: ReadonlySet<string>) {}

  list(value: unknown, path: string): void {
    if (!Array.isArray(value)) invalid(path, 'must be an array (empty when there are none)');
    for (let i = 0; i < value.length; i++) this.component(value[i], child(path, i));
  }

  component(value: unknown, path: string): void {
    if (++this.count > SBOM_LIMITS.components) invalid(path, `is one component too many: at most ${SBOM_LIMITS.components} are accepted`);
    if (!isObject(value)) invalid(path, 'must be an object');
    if (typeof value.type !== 'string' || !this.types.has(value.type))
      invalid(child(path, 'type'), `must be one of ${[...this.types].join(', ')}`);
    if (typeof value.name !== 'string' || value.name.length === 0) invalid(child(path, 'name'), 'must be a non-empty string');
    if (value.version !== undefined && typeof value.version !== 'string') invalid(child(path, 'version'), 'must be a string');
    if (value.purl !== undefined && (typeof value.purl !== 'string' || !value.purl.startsWith('pkg:')))
      invalid(child(path, 'purl'), 'must start with "pkg:"');
    const ref = value['bom-ref'];
    if (ref !== undefined) {
      if (typeof ref !== 'string' || ref.length === 0) invalid(child(path, 'bom-ref'), 'must be a non-empty string');
      if (this.refs.has(ref)) invalid(child(path, 'bom-ref'), `repeats ${JSON.stringify(ref)}: bom-refs must be unique in the document`);
      this.refs.add(ref);
    }
    if (value.hashes !== undefined) this.hashes(value.hashes, child(path, 'hashes'));
    if (value.components !== undefined) this.list(value.components, child(path, 'components'));
  }

  private hashes(value: unknown, path: string): void {
    if (!Array.isArray(value)) invalid(path, 'must be an array');
    for (let i = 0; i < value.length; i++) {
      const hash: unknown = value[i];
      const at = child(path, i);
      if (!isObject(hash)) invalid(at, 'must be an object with alg and content');
      const lengths = typeof hash.alg === 'string' && Object.hasOwn(HASH_HEX_LENGTHS, hash.alg) ? HASH_HEX_LENGTHS[hash.alg]! : null;
      if (!lengths) invalid(child(at, 'alg'), `must be one of ${Object.keys(HASH_HEX_LENGTHS).join(', ')}`);
      if (typeof hash.content !== 'string' || !HEX.test(hash.content) || !lengths.includes(hash.content.length)) {
        invalid(child(at, 'content'), `must be the ${hash.alg} digest in hex (${lengths.join(' or ')} characters)`);
      }
    }
  }
}

/** Checks a CycloneDX JSON document (parsed, or its text); throws a ValidationError (`update.sbom_invalid`) saying what is wrong. */
export function validateSbom(document: unknown): SbomSummary {
  let doc = document;
  if (typeof doc === 'string') {
    try {
      doc = JSON.parse(doc);
    } catch {
      invalid('the document', 'is not valid JSON');
    }
  }
  if (!isObject(doc)) invalid('the document', 'must be a JSON object (a CycloneDX BOM)');
  checkBounds(doc, '', 0);
  if (doc.bomFormat !== 'CycloneDX') invalid('bomFormat', 'must be "CycloneDX"');
  const specVersion = doc.specVersion;
  if (typeof specVersion !== 'string' || !Object.hasOwn(COMPONENT_TYPES, specVersion))
    invalid('specVersion', `must be one of ${Object.keys(COMPONENT_TYPES).join(', ')}`);
  if (typeof doc.version !== 'number' || !Number.isSafeInteger(doc.version) || doc.version < 1)
    invalid('version', 'must be an integer of at least 1');
  if (doc.serialNumber !== undefined && (typeof doc.serialNumber !== 'string' || !SERIAL_NUMBER.test(doc.serialNumber)))
    invalid('serialNumber', 'must be "urn:uuid:" and an RFC 4122 UUID');

  const checker = new ComponentChecker(COMPONENT_TYPES[specVersion]!);
  if (doc.metadata !== undefined) {
    if (!isObject(doc.metadata)) invalid('metadata', 'must be an object');
    if (doc.metadata.component !== undefined) checker.component(doc.metadata.component, 'metadata.component');
  }
  const described = checker.count;
  checker.list(doc.components, 'components');
  return { specVersion, components: checker.count - described };
}
