/**
 * OSV records (https://ossf.github.io/osv-schema/): the fields the matcher reads, checked and
 * bounded, and the record's severity. A record is read from its JSON; fields this module does not
 * use are kept in the stored record as they came. The severity is the highest of the CVSS v3
 * base scores it carries (computed from the vector) and `database_specific.severity` (the GitHub
 * and other databases' word); a record with neither, or only a CVSS v4 vector, counts as medium.
 */
import type { Severity } from '../model.js';
import { AdvisoryInvalidError } from './errors.js';

export type RangeType = 'SEMVER' | 'ECOSYSTEM' | 'GIT';

export interface OsvEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
  limit?: string;
}

export interface OsvRange {
  type: RangeType;
  repo?: string;
  events: OsvEvent[];
}

export interface OsvAffected {
  package: { ecosystem: string; name: string; purl?: string };
  ranges: OsvRange[];
  versions: string[];
}

export interface OsvRecord {
  id: string;
  modified: string;
  summary: string;
  aliases: string[];
  affected: OsvAffected[];
  severity: Severity;
  /** Where the severity came from: `CVSS_V3 <score>`, `database_specific`, or `default`. */
  severitySource: string;
  /** The record as it came (stored and served). */
  raw: Record<string, unknown>;
}

export const OSV_LIMITS = { affected: 1000, ranges: 100, events: 1000, versions: 20_000, stringLength: 1024 } as const;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(path: string, problem: string): never {
  throw new AdvisoryInvalidError(`${path} ${problem}`, { path });
}

function text(value: unknown, path: string, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > OSV_LIMITS.stringLength)
    fail(path, `must be a non-empty string of at most ${OSV_LIMITS.stringLength} characters`);
  return value;
}

function list(value: unknown, path: string, max: number): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(path, 'must be an array');
  if (value.length > max) fail(path, `has ${value.length} entries; at most ${max} are accepted`);
  return value;
}

function parseRange(value: unknown, path: string): OsvRange {
  if (!isObject(value)) fail(path, 'must be an object');
  const type = value.type;
  if (type !== 'SEMVER' && type !== 'ECOSYSTEM' && type !== 'GIT') fail(`${path}.type`, 'must be SEMVER, ECOSYSTEM or GIT');
  const repo = text(value.repo, `${path}.repo`, true);
  if (type === 'GIT' && repo === undefined) fail(`${path}.repo`, 'is required for a GIT range');
  const events = list(value.events, `${path}.events`, OSV_LIMITS.events).map((event, i): OsvEvent => {
    const at = `${path}.events[${i}]`;
    if (!isObject(event)) fail(at, 'must be an object');
    const keys = Object.keys(event).filter((k) => (EVENT_KEYS as readonly string[]).includes(k));
    if (keys.length !== 1) fail(at, `must have exactly one of ${EVENT_KEYS.join(', ')}`);
    const key = keys[0] as (typeof EVENT_KEYS)[number];
    return { [key]: text(event[key], `${at}.${key}`) };
  });
  if (!events.some((e) => e.introduced !== undefined)) fail(`${path}.events`, 'must have at least one introduced event');
  return { type, ...(repo !== undefined ? { repo } : {}), events };
}

function parseAffected(value: unknown, path: string): OsvAffected {
  if (!isObject(value)) fail(path, 'must be an object');
  const pkg = value.package;
  if (!isObject(pkg)) fail(`${path}.package`, 'must be an object with ecosystem and name (and optionally purl)');
  const purl = text(pkg.purl, `${path}.package.purl`, true);
  if (purl !== undefined && !purl.startsWith('pkg:')) fail(`${path}.package.purl`, 'must start with "pkg:"');
  const ranges = list(value.ranges, `${path}.ranges`, OSV_LIMITS.ranges).map((r, i) => parseRange(r, `${path}.ranges[${i}]`));
  const versions = list(value.versions, `${path}.versions`, OSV_LIMITS.versions).map((v, i) => text(v, `${path}.versions[${i}]`)!);
  return {
    package: {
      ecosystem: text(pkg.ecosystem, `${path}.package.ecosystem`)!,
      name: text(pkg.name, `${path}.package.name`)!,
      ...(purl ? { purl } : {}),
    },
    ranges,
    versions,
  };
}

/** Checks one OSV record (parsed JSON) and returns what the matcher reads; throws AdvisoryInvalidError naming the first problem. */
export function parseOsv(value: unknown, where = 'record'): OsvRecord {
  if (!isObject(value)) fail(where, 'must be a JSON object (an OSV record)');
  const id = value.id;
  if (typeof id !== 'string' || !ID.test(id)) fail(`${where}.id`, 'must be an OSV ID such as GHSA-xxxx-xxxx-xxxx or CVE-2024-1234');
  const modified = text(value.modified, `${where}.modified`)!;
  if (Number.isNaN(Date.parse(modified))) fail(`${where}.modified`, 'must be an RFC 3339 time');
  const summary = typeof value.summary === 'string' ? value.summary.slice(0, OSV_LIMITS.stringLength) : '';
  const aliases = list(value.aliases, `${where}.aliases`, 100).map((a, i) => text(a, `${where}.aliases[${i}]`)!);
  const affected = list(value.affected, `${where}.affected`, OSV_LIMITS.affected).map((a, i) =>
    parseAffected(a, `${where}.affected[${i}]`),
  );
  const { severity, source } = severityOf(value);
  return { id, modified, summary, aliases, affected, severity, severitySource: source, raw: value };
}

/** The records a JSON document holds: one OSV record, an array of them, or an OSV API answer (`{ vulns: [...] }`). */
export function recordsOf(document: unknown, where: string): unknown[] {
  if (Array.isArray(document)) return document;
  if (typeof document === 'object' && document !== null && Array.isArray((document as { vulns?: unknown }).vulns))
    return (document as { vulns: unknown[] }).vulns;
  if (typeof document === 'object' && document !== null) return [document];
  throw new AdvisoryInvalidError(`${where} must hold an OSV record, an array of them, or { "vulns": [...] }`);
}

const RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
export const worse = (a: Severity, b: Severity): Severity => (RANK[a] >= RANK[b] ? a : b);
export const atLeast = (severity: Severity, floor: Severity): boolean => RANK[severity] >= RANK[floor];

/** The qualitative rating of a CVSS score (FIRST's table; 0 is "none", here info). */
export function severityOfScore(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  if (score > 0) return 'low';
  return 'info';
}

const WORDS: Record<string, Severity> = { CRITICAL: 'critical', HIGH: 'high', MODERATE: 'medium', MEDIUM: 'medium', LOW: 'low' };

function severityOf(record: Json): { severity: Severity; source: string } {
  let best: { severity: Severity; source: string } | null = null;
  const consider = (severity: Severity, source: string) => {
    if (!best || RANK[severity] > RANK[best.severity]) best = { severity, source };
  };
  for (const entry of Array.isArray(record.severity) ? record.severity : []) {
    if (!isObject(entry) || entry.type !== 'CVSS_V3' || typeof entry.score !== 'string') continue;
    const score = cvss3BaseScore(entry.score);
    if (score !== null) consider(severityOfScore(score), `CVSS_V3 ${score.toFixed(1)}`);
  }
  const specific = isObject(record.database_specific) ? record.database_specific.severity : undefined;
  if (typeof specific === 'string' && Object.hasOwn(WORDS, specific.toUpperCase()))
    consider(WORDS[specific.toUpperCase()]!, 'database_specific');
  return best ?? { severity: 'medium', source: 'default' };
}

const CVSS3: Record<string, Record<string, number>> = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  C: { H: 0.56, L: 0.22, N: 0 },
  I: { H: 0.56, L: 0.22, N: 0 },
  A: { H: 0.56, L: 0.22, N: 0 },
};

/** CVSS v3.x's Roundup: the smallest number with one decimal at or above the input (floating-point safe). */
function roundUp(value: number): number {
  const scaled = Math.round(value * 100_000);
  return scaled % 10_000 === 0 ? scaled / 100_000 : (Math.floor(scaled / 10_000) + 1) / 10;
}

/** The base score of a CVSS v3.0/v3.1 vector (`CVSS:3.1/AV:N/AC:L/...`), or null when it is not one. */
export function cvss3BaseScore(vector: string): number | null {
  const parts = vector.split('/');
  if (!/^CVSS:3\.[01]$/.test(parts[0] ?? '')) return null;
  const metrics = new Map(parts.slice(1).map((p) => p.split(':') as [string, string]));
  const scope = metrics.get('S');
  if (scope !== 'U' && scope !== 'C') return null;
  const value = (metric: string): number | null => CVSS3[metric]?.[metrics.get(metric) ?? ''] ?? null;
  const pr = { N: 0.85, L: scope === 'C' ? 0.68 : 0.62, H: scope === 'C' ? 0.5 : 0.27 }[metrics.get('PR') ?? ''] ?? null;
  const [av, ac, ui, c, i, a] = ['AV', 'AC', 'UI', 'C', 'I', 'A'].map(value);
  if (av == null || ac == null || ui == null || c == null || i == null || a == null || pr === null) return null;
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = scope === 'U' ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15;
  if (impact <= 0) return 0;
  const exploitability = 8.22 * av * ac * pr * ui;
  return roundUp(Math.min(scope === 'U' ? impact + exploitability : 1.08 * (impact + exploitability), 10));
}
