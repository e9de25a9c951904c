/**
 * Vulnerability advisories of an organization: OSV records imported (from files the CLI reads, a
 * request body, or a URL the deployment fetches), matched against every release's stored
 * CycloneDX SBOM (match.ts), with the devices reporting each affected release's version counted.
 * Each assessment run records the day's exposure per advisory (the charts' series) and raises a
 * finding per advisory whose releases devices still run (checks/vulnerabilities.ts). One action
 * starts a remediation rollout of a fixed release to the devices of its product running an
 * affected release.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { requirePermission, type Actor } from '../../accounts/roles.js';
import type { AuditService } from '../../audit/service.js';
import type { Clock } from '../../clock.js';
import { NotFoundError } from '../../errors.js';
import type { RolloutService, RolloutView } from '../../updates/rollouts.js';
import type { RolloutPhase } from '../../updates/rollout-model.js';
import type { Severity } from '../model.js';
import { isInternalAddress } from '../notify.js';
import {
  AdvisoryFetchFailedError,
  AdvisoryInvalidError,
  AdvisoryNotFoundError,
  AdvisorySourceRefusedError,
  RemediationInvalidError,
} from './errors.js';
import type { FleetStore } from './fleet-store.js';
import { AdvisoryIndex, componentsOf, type ComponentMatch } from './match.js';
import { parseOsv, recordsOf, type OsvRecord } from './osv.js';
import type { AdvisoryRow, AdvisoryStore } from './store.js';

export const MAX_RECORDS_PER_IMPORT = 5000;
export const MAX_FETCH_BYTES = 20 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 15_000;
const MAX_EXPOSURE_DAYS = 366;
const DAY_MS = 86_400_000;

export interface AffectedRelease {
  releaseId: string;
  productId: string;
  version: string;
  /** The SBOM components the advisory affects. */
  components: { name: string; purl: string; version: string }[];
  /** Devices reporting this version of the product. */
  devices: number;
}

export interface AdvisoryView {
  id: string;
  modified: string;
  summary: string;
  aliases: string[];
  severity: Severity;
  severitySource: string;
  importedAt: string;
  affectedReleases: AffectedRelease[];
  /** Devices running an affected release. */
  devices: number;
}

export interface ImportResult {
  added: string[];
  updated: string[];
  unchanged: string[];
}

export interface ExposurePoint {
  day: string;
  advisoryId: string;
  devices: number;
  releases: number;
}

export interface RemediationInput {
  releaseId: string;
  name?: string;
  phases?: RolloutPhase[];
}

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export class AdvisoryService {
  constructor(
    private readonly store: AdvisoryStore,
    private readonly fleet: FleetStore,
    private readonly rollouts: RolloutService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    /** The live config section: assessment.advisoryPrivateAddresses is read on each import. */
    private readonly options: { advisoryPrivateAddresses: boolean },
  ) {}

  /** Imports OSV records (each checked first: one malformed record refuses the whole import); audited. */
  async import(actor: Actor, records: unknown[], source: string): Promise<ImportResult> {
    requirePermission(actor, 'org:manage');
    if (records.length === 0) throw new AdvisoryInvalidError('The import holds no OSV record');
    if (records.length > MAX_RECORDS_PER_IMPORT)
      throw new AdvisoryInvalidError(`The import holds ${records.length} records; at most ${MAX_RECORDS_PER_IMPORT} are accepted at once`);
    const parsed = records.map((r, i) => parseOsv(r, `records[${i}]`));
    const now = this.clock.now();
    const result = await this.store.put(
      parsed.map((r) => ({
        organization_id: actor.organizationId,
        id: r.id,
        modified: r.modified,
        summary: r.summary,
        aliases: JSON.stringify(r.aliases),
        severity: r.severity,
        severity_source: r.severitySource,
        record: JSON.stringify(r.raw),
        imported_at: now,
      })),
    );
    await this.audit.recordBy(
      actor,
      'assessment.advisories_imported',
      { type: 'organization', id: actor.organizationId },
      {
        source,
        added: result.added.length,
        updated: result.updated.length,
        unchanged: result.unchanged.length,
        ids: [...result.added, ...result.updated].slice(0, 50),
      },
    );
    return result;
  }

  /**
   * Fetches OSV JSON from an https URL and imports it. A host on a loopback, private or link-local
   * address is refused unless assessment.advisoryPrivateAddresses allows it (which also allows
   * plain http, for a mirror inside the network), redirects are not
   * followed (one could lead inside), and the body is bounded. A name that re-resolves between the
   * check and the connection (DNS rebinding) is not caught; a firewall on egress is the complete answer.
   */
  async importUrl(actor: Actor, raw: string): Promise<ImportResult> {
    requirePermission(actor, 'org:manage');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AdvisorySourceRefusedError('url must be an absolute https URL');
    }
    const allowPrivate = this.options.advisoryPrivateAddresses;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowPrivate))
      throw new AdvisorySourceRefusedError(
        'url must use https (plain http only for a mirror inside your network, with assessment.advisoryPrivateAddresses)',
        {
          url: raw,
        },
      );
    if (url.username || url.password) throw new AdvisorySourceRefusedError('url must not carry credentials');
    if (!allowPrivate) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      let addresses: string[];
      if (isIP(host)) addresses = [host];
      else if (host === 'localhost' || host.endsWith('.localhost')) addresses = ['127.0.0.1'];
      else {
        try {
          addresses = (await lookup(host, { all: true })).map((a) => a.address);
        } catch {
          throw new AdvisoryFetchFailedError(`The advisory host ${url.hostname} does not resolve`, { host: url.hostname });
        }
      }
      const internal = addresses.find(isInternalAddress);
      if (internal)
        throw new AdvisorySourceRefusedError(
          `The advisory host ${url.hostname} is on a loopback, private or link-local address (${internal}); set assessment.advisoryPrivateAddresses to allow it`,
          { host: url.hostname },
        );
    }
    const text = await fetchBounded(url);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new AdvisoryInvalidError(`${url.origin}${url.pathname} did not answer JSON`);
    }
    return this.import(actor, recordsOf(document, 'The document'), url.origin + url.pathname);
  }

  /** Every advisory of the organization matched against its releases now, with the devices exposed. */
  async list(actor: Actor): Promise<AdvisoryView[]> {
    requirePermission(actor, 'assessment:read');
    return (await this.evaluate(actor.organizationId)).views;
  }

  async get(actor: Actor, id: string): Promise<AdvisoryView & { record: Record<string, unknown> }> {
    requirePermission(actor, 'assessment:read');
    const row = await this.store.get(actor.organizationId, id);
    if (!row) throw new AdvisoryNotFoundError(id);
    const { views } = await this.evaluate(actor.organizationId, [row]);
    return { ...views[0]!, record: JSON.parse(row.record) as Record<string, unknown> };
  }

  /** Devices exposed per advisory per day over the last `days` days (as the runs recorded them). */
  async exposure(actor: Actor, query: { advisoryId?: string; days?: number }): Promise<ExposurePoint[]> {
    requirePermission(actor, 'assessment:read');
    const days = Math.min(Math.max(query.days ?? 30, 1), MAX_EXPOSURE_DAYS);
    if (query.advisoryId !== undefined && !(await this.store.get(actor.organizationId, query.advisoryId)))
      throw new AdvisoryNotFoundError(query.advisoryId);
    const rows = await this.store.exposure(actor.organizationId, dayOf(this.clock.now() - (days - 1) * DAY_MS), query.advisoryId);
    return rows.map((r) => ({ day: r.day, advisoryId: r.advisory_id, devices: r.devices, releases: r.releases }));
  }

  /**
   * What an assessment run sees: the advisories affecting a release, each with at most `deviceLimit`
   * of the devices running one; the day's exposure of each is recorded.
   */
  async assess(organizationId: string, now: number, deviceLimit: number): Promise<(AdvisoryView & { deviceIds: string[] })[]> {
    const { views } = await this.evaluate(organizationId);
    const affecting = views.filter((v) => v.affectedReleases.length > 0);
    await this.store.recordExposure(
      affecting.map((v) => ({
        organization_id: organizationId,
        advisory_id: v.id,
        day: dayOf(now),
        devices: v.devices,
        releases: v.affectedReleases.length,
        recorded_at: now,
      })),
    );
    const result: (AdvisoryView & { deviceIds: string[] })[] = [];
    for (const view of affecting) {
      const deviceIds: string[] = [];
      for (const [productId, versions] of versionsByProduct(view.affectedReleases)) {
        const devices = await this.fleet.devicesRunning(organizationId, productId, versions, deviceLimit - deviceIds.length);
        deviceIds.push(...devices.map((d) => d.id));
      }
      result.push({ ...view, deviceIds });
    }
    return result;
  }

  /**
   * Starts a rollout of `releaseId` (a release the advisory does not affect) to every device of its
   * product running a release the advisory affects (the rollout service's remediation selector).
   */
  async remediate(
    actor: Actor,
    advisoryId: string,
    input: RemediationInput,
  ): Promise<{ rollout: RolloutView & { enrolled: number; skipped: number }; affectedVersions: string[] }> {
    requirePermission(actor, 'rollouts:manage');
    const row = await this.store.get(actor.organizationId, advisoryId);
    if (!row) throw new AdvisoryNotFoundError(advisoryId);
    const { views, releases } = await this.evaluate(actor.organizationId, [row]);
    const view = views[0]!;
    const fixed = releases.find((r) => r.id === input.releaseId);
    if (!fixed) throw new NotFoundError(`Release ${input.releaseId}`, { releaseId: input.releaseId });
    if (view.affectedReleases.some((r) => r.releaseId === fixed.id))
      throw new RemediationInvalidError(`Release ${fixed.version} is itself affected by ${advisoryId}: choose a fixed release`, {
        releaseId: fixed.id,
      });
    const affectedVersions = view.affectedReleases.filter((r) => r.productId === fixed.productId).map((r) => r.version);
    if (affectedVersions.length === 0)
      throw new RemediationInvalidError(`No release of product ${fixed.productId} is affected by ${advisoryId}`, {
        productId: fixed.productId,
      });
    const rollout = await this.rollouts.create(actor, {
      releaseId: fixed.id,
      name: input.name ?? `Remediate ${advisoryId}`,
      selector: { firmwareVersions: affectedVersions },
      ...(input.phases ? { phases: input.phases } : {}),
    });
    await this.audit.recordBy(
      actor,
      'assessment.remediation_started',
      { type: 'advisory', id: advisoryId },
      { releaseId: fixed.id, version: fixed.version, rolloutId: rollout.id, affectedVersions, enrolled: rollout.enrolled },
    );
    return { rollout, affectedVersions };
  }

  /** Matches the advisories (all, or those given) against every release's SBOM and counts the devices on each. */
  private async evaluate(organizationId: string, only?: AdvisoryRow[]) {
    const rows = only ?? (await this.store.all(organizationId));
    if (rows.length === 0) return { views: [], releases: [] }; // no SBOM is read for an organization without advisories
    const records = rows.map((r) => parseOsv(JSON.parse(r.record), r.id));
    const index = new AdvisoryIndex(records);
    const releases = await this.fleet.releases(organizationId);
    const counts = new Map((await this.fleet.devicesByVersion(organizationId)).map((c) => [`${c.productId}\u0000${c.version}`, c.devices]));
    const byAdvisory = new Map<string, AffectedRelease[]>();
    for (const release of releases) {
      let sbom: unknown;
      try {
        sbom = JSON.parse(release.sbom);
      } catch {
        continue; // every stored SBOM was validated at publication; an unreadable one matches nothing
      }
      const matches = index.match(componentsOf(sbom));
      for (const [advisoryId, found] of groupBy(matches)) {
        const list = byAdvisory.get(advisoryId) ?? [];
        list.push({
          releaseId: release.id,
          productId: release.productId,
          version: release.version,
          components: found.map((m) => ({ name: m.name, purl: m.purl, version: m.version })),
          devices: counts.get(`${release.productId}\u0000${release.version}`) ?? 0,
        });
        byAdvisory.set(advisoryId, list);
      }
    }
    const views = rows.map((row, i) => toView(row, records[i]!, byAdvisory.get(row.id) ?? []));
    return { views, releases };
  }
}

function groupBy(matches: ComponentMatch[]): Map<string, ComponentMatch[]> {
  const groups = new Map<string, ComponentMatch[]>();
  for (const m of matches) groups.set(m.advisoryId, [...(groups.get(m.advisoryId) ?? []), m]);
  return groups;
}

function versionsByProduct(releases: AffectedRelease[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const r of releases) map.set(r.productId, [...(map.get(r.productId) ?? []), r.version]);
  return map;
}

function toView(row: AdvisoryRow, record: OsvRecord, affectedReleases: AffectedRelease[]): AdvisoryView {
  return {
    id: row.id,
    modified: record.modified,
    summary: record.summary,
    aliases: record.aliases,
    severity: row.severity,
    severitySource: row.severity_source,
    importedAt: new Date(Number(row.imported_at)).toISOString(),
    affectedReleases,
    devices: affectedReleases.reduce((sum, r) => sum + r.devices, 0),
  };
}

/** GETs `url` without following redirects, within the time and size bounds. */
async function fetchBounded(url: URL): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      headers: { accept: 'application/json' },
    });
  } catch (error) {
    throw new AdvisoryFetchFailedError(`Fetching ${url.origin}${url.pathname} failed: ${(error as Error).message}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new AdvisoryFetchFailedError(`${url.origin}${url.pathname} answered ${response.status}, not 200 (redirects are not followed)`, {
      status: response.status,
    });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  for (let next = await reader?.read(); reader && next && !next.done; next = await reader.read()) {
    total += next.value.length;
    if (total > MAX_FETCH_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new AdvisoryFetchFailedError(`${url.origin}${url.pathname} sent more than ${MAX_FETCH_BYTES} bytes`);
    }
    chunks.push(Buffer.from(next.value));
  }
  return Buffer.concat(chunks).toString('utf8');
}
