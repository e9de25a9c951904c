/**
 * Vulnerability disclosure (ETSI EN 303 645 provision 5.2-1, docs/assessment.md): the public
 * report intake, the acknowledgement mailed to the reporter, the operators' triage with its
 * deadlines, and the security.txt (RFC 9116) that tells researchers where to report. Also the
 * public list of products with the end of their support period (provision 5.3-13).
 *
 * No enumeration: a report naming an unknown organization answers exactly like one naming a known
 * one (202, a fresh report ID) but is stored nowhere and mails nothing; an audit entry without an
 * organization records that it came. Reports are bounded per source address (the route's rate
 * limit) and per organization (disclosure.maxUntriagedReports untriaged at most; more are dropped,
 * answered alike, and the drop audited).
 */
import type { Mailer } from '../accounts/mailer.js';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import { NotFoundError } from '../errors.js';
import type { Config } from '../ops/config.js';
import { newId } from '../tokens.js';
import { DAY_MS } from './checks/check.js';
import type { DisclosureRow, DisclosureStore } from './disclosure-store.js';
import { DisclosureTransitionError } from './errors.js';

export type DisclosureState = 'received' | 'triaged' | 'fixed' | 'rejected';

/** Which state may follow which: triage first (or reject outright), then fixed or rejected; fixed and rejected are final. */
const NEXT: Record<DisclosureState, readonly DisclosureState[]> = {
  received: ['triaged', 'rejected'],
  triaged: ['fixed', 'rejected'],
  fixed: [],
  rejected: [],
};

export interface DisclosureReport {
  organization: string;
  title: string;
  description: string;
  product?: string;
  contact?: string;
}

export interface DisclosureView {
  id: string;
  product: string | null;
  title: string;
  description: string;
  contact: string | null;
  state: DisclosureState;
  note: string | null;
  receivedAt: string;
  acknowledgeBy: string;
  resolveBy: string;
  triagedAt: string | null;
  resolvedAt: string | null;
  overdue: boolean;
}

export class DisclosureService {
  constructor(
    private readonly store: DisclosureStore,
    private readonly mailer: Mailer,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'disclosure' | 'http'>,
  ) {}

  /** The deployment's security.txt (RFC 9116): where to report, until when this file holds, in which language. */
  securityTxt(): string {
    const { disclosure, http } = this.config;
    const base = http.publicUrl?.replace(/\/+$/, '');
    const contact = disclosure.contact ?? (base ? `${base}/api/v1/disclosures` : undefined);
    const lines: string[] = [];
    if (contact) lines.push(`Contact: ${contact}`);
    lines.push(`Expires: ${new Date(this.clock.now() + disclosure.expiresDays * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z')}`);
    lines.push(`Preferred-Languages: ${disclosure.preferredLanguages}`);
    if (base) lines.push(`Canonical: ${base}/.well-known/security.txt`);
    if (disclosure.policy) lines.push(`Policy: ${disclosure.policy}`);
    return `${lines.join('\n')}\n`;
  }

  /** Takes a report from anyone; answers the same for an unknown organization (nothing stored, nothing mailed). */
  async receive(report: DisclosureReport, sourceIp: string | null): Promise<{ id: string; acknowledgeBy: string }> {
    const now = this.clock.now();
    const id = newId();
    const acknowledgeBy = now + this.config.disclosure.acknowledgeDays * DAY_MS;
    const organization = await this.store.organizationBySlug(report.organization);
    const personal = report.contact ? { personal: { subject: null, fields: { contact: report.contact } } } : {};
    if (!organization) {
      await this.audit.record({
        organizationId: null,
        actor: { type: 'anonymous', id: null },
        action: 'disclosure.unmatched',
        target: { type: 'disclosure', id },
        sourceIp,
        outcome: 'failure',
        details: { organization: report.organization },
      });
      return { id, acknowledgeBy: iso(acknowledgeBy) };
    }
    // Bounded per organization: past the cap a report is answered alike, dropped, and the drop audited.
    if ((await this.store.countReceived(organization.id)) >= this.config.disclosure.maxUntriagedReports) {
      await this.audit.record({
        organizationId: organization.id,
        actor: { type: 'anonymous', id: null },
        action: 'disclosure.dropped',
        target: { type: 'disclosure', id },
        sourceIp,
        outcome: 'failure',
        details: { reason: 'too many untriaged reports', limit: this.config.disclosure.maxUntriagedReports },
      });
      return { id, acknowledgeBy: iso(acknowledgeBy) };
    }
    await this.store.insert({
      id,
      organization_id: organization.id,
      product: report.product ?? null,
      title: report.title,
      description: report.description,
      contact: report.contact ?? null,
      state: 'received',
      note: null,
      received_at: now,
      acknowledge_by: acknowledgeBy,
      resolve_by: now + this.config.disclosure.resolveDays * DAY_MS,
      triaged_at: null,
      resolved_at: null,
      updated_at: now,
    });
    await this.audit.record({
      organizationId: organization.id,
      actor: { type: 'anonymous', id: null },
      action: 'disclosure.received',
      target: { type: 'disclosure', id },
      sourceIp,
      details: { title: report.title, product: report.product ?? null, withContact: report.contact !== undefined },
      ...personal,
    });
    if (report.contact)
      await this.mailer.send({
        to: report.contact,
        kind: 'disclosure_ack',
        subject: `[Bulwark] Your vulnerability report ${id} was received`,
        text:
          `Thank you for your report "${report.title}".\n\n` +
          `Report ID: ${id}\n` +
          `We aim to triage it by ${iso(acknowledgeBy)} and to resolve it within ${this.config.disclosure.resolveDays} days.\n` +
          `Quote the report ID in any follow-up.\n`,
      });
    return { id, acknowledgeBy: iso(acknowledgeBy) };
  }

  async list(
    actor: Actor,
    state: DisclosureState | undefined,
    limit = 50,
    before?: number,
  ): Promise<{ reports: DisclosureView[]; nextCursor: number | null }> {
    requirePermission(actor, 'assessment:read');
    const rows = await this.store.list(actor.organizationId, state, limit, before);
    const last = rows.at(-1);
    return { reports: rows.map((r) => this.view(r)), nextCursor: rows.length === limit && last ? Number(last.received_at) : null };
  }

  async get(actor: Actor, id: string): Promise<DisclosureView> {
    requirePermission(actor, 'assessment:read');
    return this.view(await this.load(actor.organizationId, id));
  }

  /** Moves a report on (received → triaged → fixed / rejected), with the operators' note; audited. */
  async setState(actor: Actor, id: string, state: DisclosureState, note: string): Promise<DisclosureView> {
    requirePermission(actor, 'org:manage');
    const row = await this.load(actor.organizationId, id);
    const from = row.state as DisclosureState;
    if (!NEXT[from].includes(state))
      throw new DisclosureTransitionError(`A ${from} report cannot become ${state}`, { from, to: state, allowed: NEXT[from] });
    const now = this.clock.now();
    const changes: Partial<DisclosureRow> = { state, note, updated_at: now };
    if (state === 'triaged' || (from === 'received' && state === 'rejected')) changes.triaged_at = now;
    if (state === 'fixed' || state === 'rejected') changes.resolved_at = now;
    if (!(await this.store.transition(actor.organizationId, id, from, changes)))
      throw new DisclosureTransitionError('The report changed meanwhile; read it again', { from, to: state });
    await this.audit.recordBy(actor, 'disclosure.state_changed', { type: 'disclosure', id }, { from, to: state, note });
    return this.view({ ...row, ...changes });
  }

  /** The public list: each product's name and the end of its support period, nothing else; [] for an unknown organization. */
  async supportPeriods(organization: string): Promise<{ products: { name: string; supportUntil: string | null }[] }> {
    const found = await this.store.organizationBySlug(organization);
    if (!found) return { products: [] };
    const rows = await this.store.supportPeriods(found.id);
    return { products: rows.map((r) => ({ name: r.name, supportUntil: iso(r.support_until) })) };
  }

  private async load(organizationId: string, id: string): Promise<DisclosureRow> {
    const row = await this.store.find(organizationId, id);
    if (!row) throw new NotFoundError(`Disclosure report ${id}`, { id });
    return row;
  }

  private view(row: DisclosureRow): DisclosureView {
    const now = this.clock.now();
    const open = row.state === 'received' || row.state === 'triaged';
    return {
      id: row.id,
      product: row.product,
      title: row.title,
      description: row.description,
      contact: row.contact,
      state: row.state as DisclosureState,
      note: row.note,
      receivedAt: iso(row.received_at),
      acknowledgeBy: iso(row.acknowledge_by),
      resolveBy: iso(row.resolve_by),
      triagedAt: iso(row.triaged_at),
      resolvedAt: iso(row.resolved_at),
      overdue: (row.state === 'received' && Number(row.acknowledge_by) < now) || (open && Number(row.resolve_by) < now),
    };
  }
}
