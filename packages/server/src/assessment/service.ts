/**
 * Runs the audit checks over an organization and keeps its findings: a run evaluates every
 * check, opens a finding for what is newly observed, refreshes what is still observed (evidence,
 * resources, last seen) and resolves what is no longer observed, in one transaction; the run is
 * recorded and audited. Findings are read with filters and a cursor, and suppressed with a
 * reason and an expiry (an expired suppression reopens the finding; the next run resolves it if
 * the condition is gone). A check that fails leaves its findings as they were.
 */
import { requirePermission, auditActor, type Actor } from '../accounts/roles.js';
import type { AuditEvent, AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import type { Config } from '../ops/config.js';
import { newId } from '../tokens.js';
import { AUDIT_CHECKS, type Check, type CheckContext, type Observation } from './checks/index.js';
import { FindingNotFoundError, SuppressionInvalidError } from './errors.js';
import type { AdvisoryView } from './advisories/service.js';
import type { EvidenceStore } from './evidence-store.js';
import {
  newFinding,
  type FindingFilter,
  type FindingView,
  type ResourceRef,
  type RunTrigger,
  type RunView,
  type Severity,
} from './model.js';
import type { AssessmentStore, FindingRow } from './store.js';
import type { AssessmentRunsTable } from '../storage/schema.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';

const MAX_SUPPRESSION_MS = 366 * 86_400_000;
const MAX_PAGE = 200;

export interface RunDeps {
  caChain(): Promise<string>;
  /** Advisory matching (advisories/service.ts assess). */
  vulnerabilities?(organizationId: string, now: number, deviceLimit: number): Promise<(AdvisoryView & { deviceIds: string[] })[]>;
}

export class AssessmentService {
  constructor(
    private readonly store: AssessmentStore,
    private readonly evidence: EvidenceStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly deps: RunDeps,
    private readonly checks: readonly Check[] = AUDIT_CHECKS,
  ) {}

  /** CheckContext.keyVerdicts of each organization. */
  private readonly keyVerdicts = new Map<string, Map<string, string | null>>();

  /** The checks a run evaluates, with their rationale. */
  catalogue(): { id: string; severity: Severity; title: string; rationale: string }[] {
    return this.checks.map(({ id, severity, title, rationale }) => ({ id, severity, title, rationale }));
  }

  /** Runs every check over the actor's organization (API, CLI). */
  async run(actor: Actor, trigger: Exclude<RunTrigger, 'schedule'>): Promise<RunView> {
    requirePermission(actor, 'assessment:read');
    return this.runFor(actor.organizationId, trigger, auditActor(actor), new Map());
  }

  /** The scheduled run: every organization in turn; deployment-wide evidence (the audit chain) is computed once. */
  async runAll(): Promise<RunView[]> {
    const shared = new Map<string, Promise<unknown>>();
    const runs: RunView[] = [];
    for (const org of await this.evidence.organizations())
      runs.push(await this.runFor(org.id, 'schedule', { type: 'system', id: null }, shared));
    return runs;
  }

  private keyVerdictsOf(organizationId: string): Map<string, string | null> {
    let verdicts = this.keyVerdicts.get(organizationId);
    if (!verdicts) this.keyVerdicts.set(organizationId, (verdicts = new Map()));
    return verdicts;
  }

  /** The organization the CLI names. */
  async organizationId(slug: string): Promise<string | null> {
    return (await this.evidence.organizationBySlug(slug))?.id ?? null;
  }

  private async runFor(
    organizationId: string,
    trigger: RunTrigger,
    actor: AuditEvent['actor'],
    shared: Map<string, Promise<unknown>>,
  ): Promise<RunView> {
    const startedAt = this.clock.now();
    const started = performance.now();
    const limit = this.config.assessment.resourcesPerFinding;
    const ctx: CheckContext = {
      organizationId,
      now: startedAt,
      config: this.config,
      evidence: this.evidence,
      audit: this.audit,
      caChain: () => this.deps.caChain(),
      ...(this.deps.vulnerabilities ? { vulnerabilities: () => this.deps.vulnerabilities!(organizationId, startedAt, limit) } : {}),
      resourceLimit: limit,
      keyVerdicts: this.keyVerdictsOf(organizationId),
      once: <T>(key: string, compute: () => Promise<T>) => {
        let value = shared.get(key) as Promise<T> | undefined;
        if (!value) {
          value = compute();
          shared.set(key, value);
        }
        return value;
      },
    };
    const observed = new Map<string, { check: Check; observation: Observation }>();
    const evaluated: string[] = [];
    const failures: { check: string; message: string }[] = [];
    for (const check of this.checks) {
      try {
        for (const observation of await check.evaluate(ctx))
          observed.set(keyOf(check.id, observation.subject ?? ''), { check, observation });
        evaluated.push(check.id);
      } catch (error) {
        failures.push({ check: check.id, message: (error as Error).message });
      }
    }
    // Two runs over one organization at once (the schedule and an operator, or two nodes): the one that
    // loses the race to open a finding reconciles again and finds the other's.
    const reconcile = () =>
      this.store.transaction(async (trx) => {
        await this.store.expireSuppressions(organizationId, startedAt, trx);
        let opened = 0;
        let resolved = 0;
        const evaluatedSet = new Set(evaluated);
        for (const row of await this.store.unresolved(organizationId, 'audit', trx)) {
          if (!evaluatedSet.has(row.check_id) || observed.has(keyOf(row.check_id, row.subject))) continue;
          await this.store.update(row.id, { state: 'resolved', resolved_at: startedAt }, trx);
          resolved++;
        }
        for (const { check, observation } of observed.values()) {
          const subject = observation.subject ?? '';
          const resources = observation.resources.slice(0, limit);
          const fields = {
            severity: observation.severity ?? check.severity,
            title: observation.title ?? check.title,
            evidence: JSON.stringify(observation.evidence),
            resource_count: Math.max(observation.resourceCount ?? observation.resources.length, resources.length),
            last_seen_at: startedAt,
          };
          const existing = await this.store.byKey(organizationId, check.id, subject, trx);
          if (!existing) {
            await this.store.insert(
              newFinding(
                { id: newId(), organization_id: organizationId, check_id: check.id, subject, source: 'audit', first_seen_at: startedAt },
                fields,
              ),
              resources,
              trx,
            );
            opened++;
          } else {
            // A resolved finding observed again is open again, with its first sighting kept.
            const reopened = existing.state === 'resolved';
            await this.store.update(existing.id, { ...fields, ...(reopened ? { state: 'open', resolved_at: null } : {}) }, trx);
            await this.store.replaceResources(existing.id, resources, trx);
            if (reopened) opened++;
          }
        }
        const row: AssessmentRunsTable = {
          id: newId(),
          organization_id: organizationId,
          trigger,
          started_at: startedAt,
          duration_ms: Math.round(performance.now() - started),
          checks: JSON.stringify(evaluated),
          opened,
          resolved,
          open_total: await this.store.countOpen(organizationId, trx),
          failures: JSON.stringify(failures),
        };
        await this.store.insertRun(row, trx);
        await this.audit.record(
          {
            organizationId,
            actor,
            action: 'assessment.run',
            target: { type: 'assessment_run', id: row.id },
            outcome: failures.length > 0 ? 'failure' : 'success',
            details: {
              trigger,
              checks: evaluated.length,
              opened,
              resolved,
              openTotal: row.open_total,
              failures,
              durationMs: row.duration_ms,
            },
          },
          trx,
        );
        return row;
      });
    const run = await reconcile().catch((error: unknown) => {
      if (isUniqueViolation(error)) return reconcile();
      throw error;
    });
    return toRunView(run);
  }

  async list(actor: Actor, filter: FindingFilter): Promise<{ findings: FindingView[]; nextCursor: string | null }> {
    requirePermission(actor, 'assessment:read');
    await this.store.expireSuppressions(actor.organizationId, this.clock.now());
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), MAX_PAGE);
    const cursor = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, (v): v is string => typeof v === 'string');
    const rows = await this.store.list(actor.organizationId, { ...filter, cursor }, limit + 1);
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor(last.id));
    const resources = await this.store.resourcesOf(page.map((r) => r.id));
    return { findings: page.map((r) => toFindingView(r, resources.get(r.id) ?? [])), nextCursor };
  }

  async get(actor: Actor, id: string): Promise<FindingView> {
    requirePermission(actor, 'assessment:read');
    return this.findingOf(actor.organizationId, id);
  }

  /** The finding as the organization sees it (an expired suppression already lifted). */
  async findingOf(organizationId: string, id: string): Promise<FindingView> {
    await this.store.expireSuppressions(organizationId, this.clock.now());
    const row = await this.store.find(organizationId, id);
    if (!row) throw new FindingNotFoundError(id);
    return toFindingView(row, (await this.store.resourcesOf([id])).get(id) ?? []);
  }

  /** Hides an open finding until `until` (at most a year ahead), with the reason on record. */
  async suppress(actor: Actor, id: string, reason: string, until: number): Promise<FindingView> {
    requirePermission(actor, 'org:manage');
    const now = this.clock.now();
    const trimmed = reason.trim();
    if (trimmed.length < 3)
      throw new SuppressionInvalidError('A suppression needs a reason (at least 3 characters) saying why the risk is accepted');
    if (!Number.isFinite(until) || until <= now || until > now + MAX_SUPPRESSION_MS)
      throw new SuppressionInvalidError('A suppression needs an expiry in the future, at most 366 days ahead', {
        until: Number.isFinite(until) ? new Date(until).toISOString() : null,
      });
    await this.store.transaction(async (trx) => {
      const row = await this.store.find(actor.organizationId, id, trx);
      if (!row) throw new FindingNotFoundError(id);
      if (row.state === 'resolved') throw new SuppressionInvalidError('A resolved finding cannot be suppressed', { state: row.state });
      await this.store.update(
        id,
        { state: 'suppressed', suppressed_reason: trimmed, suppressed_by: actor.userId, suppressed_at: now, suppressed_until: until },
        trx,
      );
      await this.audit.recordBy(
        actor,
        'assessment.finding_suppressed',
        { type: 'finding', id },
        { check: row.check_id, reason: trimmed, until: new Date(until).toISOString() },
        trx,
      );
    });
    return this.findingOf(actor.organizationId, id);
  }

  async runs(actor: Actor, limit = 50, before?: number): Promise<{ runs: RunView[]; nextCursor: number | null }> {
    requirePermission(actor, 'assessment:read');
    const bounded = Math.min(Math.max(limit, 1), MAX_PAGE);
    const rows = await this.store.runs(actor.organizationId, bounded + 1, before);
    const { page, nextCursor } = pageOf(rows, bounded, (last) => Number(last.started_at));
    return { runs: page.map(toRunView), nextCursor };
  }
}

function keyOf(check: string, subject: string): string {
  return `${check}\u0000${subject}`;
}

export function toFindingView(row: FindingRow, resources: ResourceRef[]): FindingView {
  return {
    id: row.id,
    organizationId: row.organization_id,
    check: row.check_id,
    subject: row.subject,
    source: row.source,
    severity: row.severity,
    title: row.title,
    evidence: JSON.parse(row.evidence) as Record<string, unknown>,
    resources,
    moreResources: Math.max(0, row.resource_count - resources.length),
    state: row.state,
    firstSeenAt: iso(row.first_seen_at),
    lastSeenAt: iso(row.last_seen_at),
    resolvedAt: row.resolved_at === null ? null : iso(row.resolved_at),
    suppression:
      row.state === 'suppressed' && row.suppressed_until !== null
        ? {
            reason: row.suppressed_reason ?? '',
            by: row.suppressed_by ?? '',
            at: iso(row.suppressed_at ?? 0),
            until: iso(row.suppressed_until),
          }
        : null,
  };
}

function toRunView(row: AssessmentRunsTable): RunView {
  return {
    id: row.id,
    organizationId: row.organization_id,
    trigger: row.trigger,
    startedAt: iso(row.started_at),
    durationMs: row.duration_ms,
    checks: JSON.parse(row.checks) as string[],
    opened: row.opened,
    resolved: row.resolved,
    openTotal: row.open_total,
    failures: JSON.parse(row.failures) as { check: string; message: string }[],
  };
}
