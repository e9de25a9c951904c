/**
 * Whether a package version falls in an OSV record's affected ranges or versions list (OSV
 * schema, "Evaluation"). Events are ordered by version ("0" first) and walked: `introduced` at or
 * below the version marks it affected, `fixed` at or below it and `last_affected` below it mark it
 * not; with `limit` events the version must also be below one of them.
 *
 * - SEMVER: Semantic Versioning 2.0 (a leading "v" is dropped).
 * - ECOSYSTEM: the ecosystem's own order. npm, crates.io, Go, Hex, Pub and NuGet versions are
 *   compared as SemVer; others (PyPI, Maven, Debian, …) by a generic order: numeric runs as
 *   numbers, letter runs as text, and a trailing letter run ("rc1", "beta") before its release.
 *   That order is close to, not exactly, each ecosystem's; a version it cannot read is not matched.
 * - GIT: commits. Without the repository's history the only decidable question is equality: a
 *   commit named by `introduced` or `last_affected` (or listed in `versions`) is affected, one
 *   named by `fixed` or `limit` is not; any other commit is matched only through `versions`
 *   (which OSV databases fill with the affected tags and commits).
 */
import semver from 'semver';
import type { OsvAffected, OsvRange } from './osv.js';

/** < 0, 0, > 0, or null when either version cannot be read in this order. */
export type Comparator = (a: string, b: string) => number | null;

export function compareSemver(a: string, b: string): number | null {
  const x = semver.parse(a.replace(/^v/, ''));
  const y = semver.parse(b.replace(/^v/, ''));
  return x && y ? semver.compare(x, y) : null;
}

function tokens(version: string): (number | string)[] | null {
  const parts = version.match(/\d+|[A-Za-z]+/g);
  return parts ? parts.map((p) => (/^\d/.test(p) ? Number(p) : p.toLowerCase())) : null;
}

/** The generic order described in the module comment. */
export function compareGeneric(a: string, b: string): number | null {
  const x = tokens(a);
  const y = tokens(b);
  if (!x || !y) return null;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined) return typeof q === 'string' ? 1 : -1; // "1.0" vs "1.0rc1": the release is later
    if (q === undefined) return typeof p === 'string' ? -1 : 1;
    if (typeof p === 'number' && typeof q === 'number') {
      if (p !== q) return p - q;
    } else if (typeof p === 'number')
      return 1; // a number sorts after a letter run: 1.0.1 > 1.0.rc
    else if (typeof q === 'number') return -1;
    else if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

const SEMVER_ECOSYSTEMS = new Set(['npm', 'crates.io', 'Go', 'Hex', 'Pub', 'NuGet']);

/** The order of an ECOSYSTEM range over `ecosystem` ("Debian:12" counts as Debian). */
export function ecosystemComparator(ecosystem: string): Comparator {
  const base = ecosystem.split(':')[0]!;
  return SEMVER_ECOSYSTEMS.has(base) ? compareSemver : compareGeneric;
}

function sameCommit(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x.length >= 7 && y.length >= 7 && (x.startsWith(y) || y.startsWith(x));
}

function inGitRange(range: OsvRange, version: string): boolean {
  let affected = false;
  for (const event of range.events) {
    if ((event.fixed && sameCommit(event.fixed, version)) || (event.limit && sameCommit(event.limit, version))) return false;
    if (
      (event.introduced && event.introduced !== '0' && sameCommit(event.introduced, version)) ||
      (event.last_affected && sameCommit(event.last_affected, version))
    )
      affected = true;
  }
  return affected;
}

const eventVersion = (e: { introduced?: string; fixed?: string; last_affected?: string; limit?: string }) =>
  e.introduced ?? e.fixed ?? e.last_affected ?? e.limit!;

/** Whether `version` is in the range; false when the order cannot read it. */
export function inRange(range: OsvRange, version: string, compare: Comparator): boolean {
  if (range.type === 'GIT') return inGitRange(range, version);
  if (compare(version, version) === null) return false;
  const limits = range.events.filter((e) => e.limit !== undefined).map((e) => e.limit!);
  if (limits.length > 0 && !limits.some((limit) => limit === '*' || (compare(version, limit) ?? 0) < 0)) return false;
  const ordered = range.events
    .filter((e) => e.limit === undefined)
    .map((event, index) => ({ event, index }))
    .sort((a, b) => {
      const x = eventVersion(a.event);
      const y = eventVersion(b.event);
      if (a.event.introduced === '0' || b.event.introduced === '0')
        return a.event.introduced === '0' && b.event.introduced === '0' ? 0 : a.event.introduced === '0' ? -1 : 1;
      return compare(x, y) ?? a.index - b.index;
    });
  let affected = false;
  for (const { event } of ordered) {
    if (event.introduced !== undefined) {
      if (event.introduced === '0' || (compare(version, event.introduced) ?? -1) >= 0) affected = true;
    } else if (event.fixed !== undefined) {
      if ((compare(version, event.fixed) ?? -1) >= 0) affected = false;
    } else if (event.last_affected !== undefined) {
      if ((compare(version, event.last_affected) ?? -1) > 0) affected = false;
    }
  }
  return affected;
}

/** Whether `version` of the affected package is affected: listed in `versions`, or in one of the ranges. */
export function versionAffected(affected: OsvAffected, version: string): boolean {
  const bare = version.replace(/^v/, '');
  if (affected.versions.some((v) => v === version || v.replace(/^v/, '') === bare)) return true;
  return affected.ranges.some((range) =>
    inRange(range, version, range.type === 'SEMVER' ? compareSemver : ecosystemComparator(affected.package.ecosystem)),
  );
}
