/**
 * Matching advisories against a CycloneDX SBOM: each component's package URL (packageurl-js) names
 * a package, an OSV `affected` entry names one by its `purl` or its ecosystem and name; the two
 * are compared as `type/namespace/name` (case and PyPI's separators normalised), then the
 * component's version is checked against the entry's ranges and versions (ranges.ts). Components
 * without a purl, or without a version, are not matched.
 */
import { PackageURL } from 'packageurl-js';
import type { OsvAffected, OsvRecord } from './osv.js';
import { versionAffected } from './ranges.js';

/** OSV ecosystem (the part before ":") → package URL type. */
const PURL_TYPES: Record<string, string> = {
  npm: 'npm',
  PyPI: 'pypi',
  Go: 'golang',
  Maven: 'maven',
  'crates.io': 'cargo',
  RubyGems: 'gem',
  NuGet: 'nuget',
  Packagist: 'composer',
  Hex: 'hex',
  Pub: 'pub',
  Debian: 'deb',
  Ubuntu: 'deb',
  Alpine: 'apk',
  'GitHub Actions': 'github',
  Hackage: 'hackage',
  CRAN: 'cran',
  SwiftURL: 'swift',
};
const CASE_INSENSITIVE = new Set(['npm', 'pypi', 'github', 'deb', 'apk', 'composer', 'nuget', 'hex', 'pub']);

function keyOf(type: string, namespace: string | null | undefined, name: string): string {
  let ns = namespace ?? '';
  let n = name;
  if (CASE_INSENSITIVE.has(type)) {
    ns = ns.toLowerCase();
    n = n.toLowerCase();
  }
  if (type === 'pypi') n = n.replace(/[-_.]+/g, '-');
  return `${type}/${ns}/${n}`;
}

/** The package a purl names, as `type/namespace/name`, with its version; null when it is not a package URL. */
export function packageOfPurl(purl: string): { key: string; type: string; version: string | null } | null {
  try {
    const p = PackageURL.fromString(purl);
    return { key: keyOf(p.type, p.namespace, p.name), type: p.type, version: p.version ?? null };
  } catch {
    return null;
  }
}

/** The package an OSV `affected` entry names, as `type/namespace/name`. */
export function packageOfAffected(affected: OsvAffected): string {
  if (affected.package.purl) {
    const parsed = packageOfPurl(affected.package.purl);
    if (parsed) return parsed.key;
  }
  const ecosystem = affected.package.ecosystem.split(':')[0]!;
  const type = PURL_TYPES[ecosystem] ?? 'generic';
  const name = affected.package.name;
  const split = (sep: string): [string | null, string] => {
    const at = name.lastIndexOf(sep);
    return at > 0 ? [name.slice(0, at), name.slice(at + 1)] : [null, name];
  };
  switch (type) {
    case 'maven':
      return keyOf(type, ...split(':'));
    case 'npm':
    case 'golang':
    case 'composer':
    case 'github':
      return keyOf(type, ...split('/'));
    case 'deb':
    case 'apk':
      return keyOf(type, ecosystem.toLowerCase(), name);
    default:
      return keyOf(type, null, name);
  }
}

export interface SbomComponent {
  name: string;
  version: string | null;
  purl: string;
  /** CycloneDX scope: required, optional or excluded (not shipped at run time). */
  scope: string | null;
}

/** Every component of a CycloneDX document with a purl (nested ones and the described component included). */
export function componentsOf(sbom: unknown): SbomComponent[] {
  const found: SbomComponent[] = [];
  const walk = (value: unknown): void => {
    if (!Array.isArray(value)) return;
    for (const c of value) visit(c);
  };
  const visit = (c: unknown): void => {
    if (typeof c !== 'object' || c === null) return;
    const o = c as Record<string, unknown>;
    if (typeof o.purl === 'string' && typeof o.name === 'string')
      found.push({
        name: o.name,
        version: typeof o.version === 'string' ? o.version : null,
        purl: o.purl,
        scope: typeof o.scope === 'string' ? o.scope : null,
      });
    walk(o.components);
  };
  if (typeof sbom === 'object' && sbom !== null) {
    const doc = sbom as Record<string, unknown>;
    const metadata = doc.metadata as Record<string, unknown> | undefined;
    if (metadata) visit(metadata.component);
    walk(doc.components);
  }
  return found;
}

export interface ComponentMatch {
  advisoryId: string;
  purl: string;
  name: string;
  version: string;
  scope: string | null;
}

/** A loose form of a package name (case folded, runs of - _ . as one -) that two spellings of one package share. */
const looseName = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

/** The name segment of a purl, found with string operations alone (a superset filter before the full parse). */
function purlNameOf(purl: string): string {
  let s = purl;
  for (const sep of ['#', '?']) {
    const at = s.indexOf(sep);
    if (at >= 0) s = s.slice(0, at);
  }
  const slash = s.lastIndexOf('/');
  const at = s.lastIndexOf('@');
  if (at > slash) s = s.slice(0, at);
  const raw = s.slice(slash + 1);
  try {
    return looseName(decodeURIComponent(raw));
  } catch {
    return looseName(raw);
  }
}

/**
 * The advisories' entries by package, so an SBOM is walked once whatever the number of advisories;
 * a component whose purl's name no advisory names is skipped before its purl is parsed.
 */
export class AdvisoryIndex {
  private readonly byPackage = new Map<string, { id: string; affected: OsvAffected }[]>();
  private readonly names = new Set<string>();

  constructor(records: readonly Pick<OsvRecord, 'id' | 'affected'>[]) {
    for (const record of records)
      for (const affected of record.affected) {
        const key = packageOfAffected(affected);
        const list = this.byPackage.get(key) ?? [];
        list.push({ id: record.id, affected });
        this.byPackage.set(key, list);
        this.names.add(looseName(key.slice(key.lastIndexOf('/') + 1)));
      }
  }

  /** The (advisory, component) pairs where the component's version is affected; one per pair. */
  match(components: readonly SbomComponent[]): ComponentMatch[] {
    const matches: ComponentMatch[] = [];
    const seen = new Set<string>();
    for (const component of components) {
      if (!this.names.has(purlNameOf(component.purl))) continue;
      const pkg = packageOfPurl(component.purl);
      if (!pkg) continue;
      const version = component.version ?? pkg.version;
      if (!version) continue;
      for (const { id, affected } of this.byPackage.get(pkg.key) ?? []) {
        const key = `${id}\u0000${component.purl}\u0000${version}`;
        if (seen.has(key) || !versionAffected(affected, version)) continue;
        seen.add(key);
        matches.push({ advisoryId: id, purl: component.purl, name: component.name, version, scope: component.scope });
      }
    }
    return matches;
  }
}
