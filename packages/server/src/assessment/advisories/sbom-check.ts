/**
 * The platform's own dependency SBOM (`npm run sbom` writes sbom.cdx.json) against a directory of
 * OSV records, as CI runs it (`bulwark advisories check-sbom`): every component an advisory affects
 * is reported; the check fails when one of them ships at run time (CycloneDX scope other than
 * `excluded`) and its advisory is at or above the severity floor (critical by default).
 */
import type { Severity } from '../model.js';
import { AdvisoryIndex, componentsOf } from './match.js';
import { atLeast, parseOsv } from './osv.js';

export interface SbomVulnerability {
  advisoryId: string;
  severity: Severity;
  summary: string;
  component: string;
  version: string;
  purl: string;
  runtime: boolean;
}

export interface SbomCheckResult {
  advisories: number;
  components: number;
  found: SbomVulnerability[];
  /** What fails the check: runtime components under an advisory at or above the floor. */
  failing: SbomVulnerability[];
}

export function checkSbom(sbom: unknown, rawRecords: unknown[], failOn: Severity = 'critical'): SbomCheckResult {
  const records = rawRecords.map((r, i) => parseOsv(r, `records[${i}]`));
  const byId = new Map(records.map((r) => [r.id, r]));
  const components = componentsOf(sbom);
  const found = new AdvisoryIndex(records).match(components).map((m) => {
    const record = byId.get(m.advisoryId)!;
    return {
      advisoryId: m.advisoryId,
      severity: record.severity,
      summary: record.summary,
      component: m.name,
      version: m.version,
      purl: m.purl,
      runtime: m.scope !== 'excluded',
    };
  });
  return {
    advisories: records.length,
    components: components.length,
    found,
    failing: found.filter((f) => f.runtime && atLeast(f.severity, failOn)),
  };
}
