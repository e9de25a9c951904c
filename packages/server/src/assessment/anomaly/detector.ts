/**
 * The anomaly detector's tick (every `anomaly.evaluateSeconds`): reads the last hour of every
 * device's minutes, scores them against each product's rules (scoring.ts), loads the history of
 * the few devices that clear a device-baseline minimum, and turns what it finds into findings
 * (source `anomaly`, check `anomaly-<metric>`, one per device and metric) with the evidence: the
 * metric, the value observed, the threshold or baseline (median, MAD, z), the window. A rule
 * that says so quarantines the device through the devices service, audited as the system actor
 * `anomaly-detector` (the update path stays open; only an operator's audited `activate` brings
 * it back). A finding not observed again for `anomaly.resolveAfterMinutes` is resolved.
 */
import type { AuditService } from '../../audit/service.js';
import type { Clock } from '../../clock.js';
import { newId } from '../../tokens.js';
import { newFinding, SEVERITIES, type Severity } from '../model.js';
import type { AssessmentStore } from '../store.js';
import { checkIdOf, DEFAULT_RULES, MAX_WINDOW_MINUTES, type ProductRules } from './rules.js';
import { groupByDevice, MINUTE_MS, scoreCandidate, scoreWindow, type Candidate, type Violation } from './scoring.js';
import type { BehaviourStore } from './store.js';

const HOUR_MS = 3_600_000;
export const DETECTOR_ACTOR = 'anomaly-detector';

export interface DetectorOptions {
  /** Hours of a device's own minutes its baseline is learned from. */
  historyHours: number;
  /** Fewest minutes of history before a device baseline may raise anything. */
  minHistoryMinutes: number;
  /** Fewest devices of a product active in a minute for the product baseline to apply. */
  minPeers: number;
  /** Most devices whose history one tick loads (the highest values first). */
  maxCandidates: number;
  resolveAfterMinutes: number;
}

/** What the detector needs of the devices domain. */
export interface Quarantiner {
  quarantineBySystem(organizationId: string, deviceId: string, by: string, reason: string): Promise<boolean>;
}

export interface DetectorStats {
  ticks: number;
  devicesScored: number;
  violations: number;
  findingsOpened: number;
  findingsResolved: number;
  quarantined: number;
  tickFailures: number;
}

export interface TickResult {
  devices: number;
  violations: Violation[];
  opened: number;
  resolved: number;
  quarantined: string[];
}

export class AnomalyDetector {
  readonly stats: DetectorStats = {
    ticks: 0,
    devicesScored: 0,
    violations: 0,
    findingsOpened: 0,
    findingsResolved: 0,
    quarantined: 0,
    tickFailures: 0,
  };
  private running: Promise<TickResult> | null = null;

  constructor(
    private readonly store: BehaviourStore,
    private readonly findings: AssessmentStore,
    private readonly devices: Quarantiner,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly options: DetectorOptions,
  ) {}

  /** One evaluation (a tick already under way is joined, not doubled). */
  tick(): Promise<TickResult> {
    if (!this.running)
      this.running = this.evaluate()
        .catch((error: unknown) => {
          this.stats.tickFailures++;
          throw error;
        })
        .finally(() => (this.running = null));
    return this.running;
  }

  private async evaluate(): Promise<TickResult> {
    const now = this.clock.now();
    const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const rows = await this.store.window(current - (MAX_WINDOW_MINUTES - 1) * MINUTE_MS);
    const devices = groupByDevice(rows);
    const rules = new Map((await this.store.allRules()).map((r) => [r.product_id, JSON.parse(r.rules) as ProductRules]));
    const rulesOf = (productId: string) => rules.get(productId) ?? DEFAULT_RULES;
    const addresses = await this.store.distinctAddresses(Math.floor((now - MAX_WINDOW_MINUTES * MINUTE_MS) / HOUR_MS) * HOUR_MS);
    const { violations, candidates } = scoreWindow({ devices, current, rulesOf, addresses, minPeers: this.options.minPeers });
    violations.push(...(await this.againstHistory(candidates, current)));
    this.stats.ticks++;
    this.stats.devicesScored += devices.size;
    this.stats.violations += violations.length;
    const result = await this.record(violations, now);
    return { devices: devices.size, violations, ...result };
  }

  private async againstHistory(candidates: Candidate[], current: number): Promise<Violation[]> {
    if (candidates.length === 0) return [];
    const chosen = candidates.sort((a, b) => b.observed - a.observed).slice(0, this.options.maxCandidates);
    const from = current - this.options.historyHours * HOUR_MS;
    const history = await this.store.history([...new Set(chosen.map((c) => c.deviceId))], from, current - MINUTE_MS);
    const byDevice = new Map<string, typeof history>();
    for (const row of history) {
      const list = byDevice.get(row.device_id);
      if (list) list.push(row);
      else byDevice.set(row.device_id, [row]);
    }
    const found: Violation[] = [];
    for (const candidate of chosen) {
      const violation = scoreCandidate(candidate, byDevice.get(candidate.deviceId) ?? [], from, this.options.minHistoryMinutes);
      if (violation) found.push(violation);
    }
    return found;
  }

  /** One finding per device and metric (the most severe violation of the metric); quarantines where a violated rule says so. */
  private async record(violations: Violation[], now: number): Promise<Omit<TickResult, 'devices' | 'violations'>> {
    const worst = new Map<string, { violation: Violation; quarantine: boolean }>();
    for (const v of violations) {
      const key = `${v.organizationId}\u0000${checkIdOf(v.metric)}\u0000${v.deviceId}`;
      const held = worst.get(key);
      const quarantine = v.rule.quarantine || (held?.quarantine ?? false);
      if (!held || rank(v.rule.severity) < rank(held.violation.rule.severity)) worst.set(key, { violation: v, quarantine });
      else held.quarantine = quarantine;
    }
    let opened = 0;
    const quarantined: string[] = [];
    for (const { violation, quarantine } of worst.values()) {
      const { id, isNew, suppressed } = await this.raise(violation, now);
      if (isNew) opened++;
      // A suppressed finding is a risk an operator accepted: it does not quarantine.
      if (!quarantine || suppressed) continue;
      const reason = `anomaly finding ${id} (${checkIdOf(violation.metric)}): ${violation.metric} ${violation.observed} ${describeLimit(violation)}`;
      if (await this.devices.quarantineBySystem(violation.organizationId, violation.deviceId, DETECTOR_ACTOR, reason)) {
        quarantined.push(violation.deviceId);
        this.stats.quarantined++;
      }
    }
    let resolved = 0;
    const cutoff = now - this.options.resolveAfterMinutes * MINUTE_MS;
    for (const row of await this.store.openAnomalies()) {
      if (worst.has(`${row.organization_id}\u0000${row.check_id}\u0000${row.subject}`) || Number(row.last_seen_at) > cutoff) continue;
      await this.findings.update(row.id, { state: 'resolved', resolved_at: now });
      resolved++;
    }
    this.stats.findingsOpened += opened;
    this.stats.findingsResolved += resolved;
    return { opened, resolved, quarantined };
  }

  private async raise(violation: Violation, now: number): Promise<{ id: string; isNew: boolean; suppressed: boolean }> {
    const check = checkIdOf(violation.metric);
    const fields = {
      severity: violation.rule.severity,
      title: titleOf(violation),
      evidence: JSON.stringify(evidenceOf(violation)),
      resource_count: 1,
      last_seen_at: now,
    };
    return this.findings.transaction(async (trx) => {
      const existing = await this.findings.byKey(violation.organizationId, check, violation.deviceId, trx);
      if (existing) {
        const reopened = existing.state === 'resolved';
        await this.findings.update(existing.id, { ...fields, ...(reopened ? { state: 'open', resolved_at: null } : {}) }, trx);
        if (reopened) await this.recordDetected(existing.id, violation, trx);
        return { id: existing.id, isNew: reopened, suppressed: existing.state === 'suppressed' };
      }
      const id = newId();
      await this.findings.insert(
        newFinding(
          {
            id,
            organization_id: violation.organizationId,
            check_id: check,
            subject: violation.deviceId,
            source: 'anomaly',
            first_seen_at: now,
          },
          fields,
        ),
        [{ type: 'device', id: violation.deviceId }],
        trx,
      );
      await this.recordDetected(id, violation, trx);
      return { id, isNew: true, suppressed: false };
    });
  }

  private recordDetected(findingId: string, violation: Violation, trx: Parameters<Parameters<AssessmentStore['transaction']>[0]>[0]) {
    return this.audit.record(
      {
        organizationId: violation.organizationId,
        actor: { type: 'system', id: DETECTOR_ACTOR },
        action: 'assessment.anomaly_detected',
        target: { type: 'finding', id: findingId },
        details: { deviceId: violation.deviceId, ...evidenceOf(violation) },
      },
      trx,
    );
  }
}

const rank = (severity: Severity) => SEVERITIES.indexOf(severity);

function describeLimit(v: Violation): string {
  return v.kind === 'threshold'
    ? `over ${(v.rule as { max: number }).max} in ${v.window.minutes} min`
    : `at z ${v.baseline!.z.toFixed(1)} over the ${v.kind === 'device-baseline' ? "device's" : "product's"} baseline (median ${v.baseline!.median})`;
}

function titleOf(v: Violation): string {
  return `Device ${v.metric} ${v.kind === 'threshold' ? 'over its product threshold' : `far above its ${v.kind === 'device-baseline' ? 'own' : "product's"} baseline`}`;
}

/** What a finding shows: the metric, the value, the threshold or baseline, the window. */
export function evidenceOf(v: Violation): Record<string, unknown> {
  return {
    metric: v.metric,
    observed: v.observed,
    rule: v.kind,
    window: { from: new Date(v.window.from).toISOString(), to: new Date(v.window.to).toISOString(), minutes: v.window.minutes },
    ...(v.kind === 'threshold'
      ? { threshold: (v.rule as { max: number }).max }
      : {
          baseline: {
            median: v.baseline!.median,
            mad: v.baseline!.mad,
            samples: v.baseline!.samples,
            z: Math.round(v.baseline!.z * 100) / 100,
            zThreshold: (v.rule as { z: number }).z,
            minimum: (v.rule as { minimum: number }).minimum,
          },
        }),
    quarantine: v.rule.quarantine,
  };
}
