/**
 * The anomaly detection an operator sees: each product's rules (read with their source, set and
 * reset, audited with the old and new rules), a device's behaviour minutes, and retention of the
 * behaviour tables. The API and the CLI are two doors to these methods.
 */
import { requirePermission, type Actor } from '../../accounts/roles.js';
import type { AuditService } from '../../audit/service.js';
import type { Clock } from '../../clock.js';
import type { DevicesService } from '../../devices/service.js';
import { NotFoundError } from '../../errors.js';
import { AnomalyRulesInvalidError } from '../errors.js';
import { DEFAULT_RULES, MAX_WINDOW_MINUTES, METRICS, type ProductRules } from './rules.js';
import type { BehaviourCounts } from './recorder.js';
import type { BehaviourStore, MinuteRow } from './store.js';
import { SEVERITIES } from '../model.js';

const DAY_MS = 86_400_000;
const MAX_RULES = 32;
/** Most minutes of a device's behaviour one read returns (a day). */
export const MAX_BEHAVIOUR_MINUTES = 1440;

export interface RulesView {
  productId: string;
  /** 'product': set for this product; 'default': the deployment's defaults apply. */
  source: 'product' | 'default';
  rules: ProductRules;
  updatedAt: string | null;
  updatedBy: string | null;
}

/** One minute of a device's behaviour: the broker's counts and the distinct source addresses. */
export type BehaviourMinute = BehaviourCounts & { minute: string; addresses: number };

export class AnomalyService {
  constructor(
    private readonly store: BehaviourStore,
    private readonly devices: DevicesService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly retentionDays: number,
  ) {}

  async rules(actor: Actor, productId: string): Promise<RulesView> {
    requirePermission(actor, 'assessment:read');
    await this.product(actor, productId);
    return toView(productId, await this.store.rulesOf(productId));
  }

  /** Replaces the product's rules (validated whole); audited with the previous and new rules. */
  async setRules(actor: Actor, productId: string, rules: ProductRules): Promise<RulesView> {
    requirePermission(actor, 'org:manage');
    validate(rules);
    await this.product(actor, productId);
    const now = this.clock.now();
    const kept: ProductRules = { thresholds: rules.thresholds, baselines: rules.baselines };
    await this.store.transaction(async (trx) => {
      const before = await this.store.rulesOf(productId, trx);
      await this.store.setRules(
        {
          product_id: productId,
          organization_id: actor.organizationId,
          rules: JSON.stringify(kept),
          updated_at: now,
          updated_by: actor.userId,
        },
        trx,
      );
      await this.audit.recordBy(
        actor,
        'assessment.anomaly_rules_set',
        { type: 'product', id: productId },
        { before: before ? (JSON.parse(before.rules) as ProductRules) : 'default', after: kept },
        trx,
      );
    });
    return toView(productId, await this.store.rulesOf(productId));
  }

  /** The product goes back to the default rules; audited. */
  async resetRules(actor: Actor, productId: string): Promise<RulesView> {
    requirePermission(actor, 'org:manage');
    await this.product(actor, productId);
    await this.store.transaction(async (trx) => {
      const before = await this.store.rulesOf(productId, trx);
      if (!(await this.store.deleteRules(productId, trx))) return;
      await this.audit.recordBy(
        actor,
        'assessment.anomaly_rules_reset',
        { type: 'product', id: productId },
        { before: JSON.parse(before!.rules) as ProductRules },
        trx,
      );
    });
    return toView(productId, undefined);
  }

  /** The device's behaviour over the last `minutes` minutes, oldest first (minutes without activity have no row). */
  async behaviour(actor: Actor, deviceId: string, minutes: number): Promise<BehaviourMinute[]> {
    requirePermission(actor, 'assessment:read');
    await this.devices.get(actor, deviceId);
    const span = Math.min(Math.max(Math.floor(minutes), 1), MAX_BEHAVIOUR_MINUTES);
    const rows = await this.store.deviceMinutes(deviceId, this.clock.now() - span * 60_000);
    return rows.map(toMinute);
  }

  /** Deletes behaviour older than `anomaly.retentionDays`; the number of minute rows deleted. */
  prune(): Promise<number> {
    return this.store.prune(this.clock.now() - this.retentionDays * DAY_MS);
  }

  private async product(actor: Actor, productId: string): Promise<void> {
    if (!(await this.devices.productOf(actor.organizationId, productId))) throw new NotFoundError('Product', { productId });
  }
}

function toView(productId: string, row: { rules: string; updated_at: number; updated_by: string } | undefined): RulesView {
  return row
    ? {
        productId,
        source: 'product',
        rules: JSON.parse(row.rules) as ProductRules,
        updatedAt: new Date(Number(row.updated_at)).toISOString(),
        updatedBy: row.updated_by,
      }
    : { productId, source: 'default', rules: DEFAULT_RULES, updatedAt: null, updatedBy: null };
}

function toMinute(row: MinuteRow): BehaviourMinute {
  return {
    minute: new Date(Number(row.minute)).toISOString(),
    messages: row.messages,
    bytes: Number(row.bytes),
    connects: row.connects,
    authFailures: row.auth_failures,
    aclDenials: row.acl_denials,
    payloadErrors: row.payload_errors,
    takeovers: row.takeovers,
    reboots: row.reboots,
    updateFailures: row.update_failures,
    addresses: row.addresses,
  };
}

/** The checks the API schema cannot say (it says types and ranges): counts, and which metrics a baseline can learn. */
function validate(rules: ProductRules): void {
  const all = [...rules.thresholds, ...rules.baselines];
  if (rules.thresholds.length > MAX_RULES || rules.baselines.length > MAX_RULES)
    throw new AnomalyRulesInvalidError(`At most ${MAX_RULES} threshold rules and ${MAX_RULES} baseline rules per product`);
  for (const [i, rule] of all.entries()) {
    if (!METRICS.includes(rule.metric))
      throw new AnomalyRulesInvalidError(`Rule ${i}: unknown metric ${rule.metric}`, { metrics: METRICS });
    if (!SEVERITIES.includes(rule.severity)) throw new AnomalyRulesInvalidError(`Rule ${i}: unknown severity ${rule.severity}`);
  }
  for (const rule of rules.thresholds)
    if (!Number.isInteger(rule.windowMinutes) || rule.windowMinutes < 1 || rule.windowMinutes > MAX_WINDOW_MINUTES || !(rule.max >= 0))
      throw new AnomalyRulesInvalidError(`A threshold rule needs windowMinutes 1-${MAX_WINDOW_MINUTES} and max ≥ 0`, { rule });
  for (const rule of rules.baselines) {
    if ((rule.metric as string) === 'addresses')
      throw new AnomalyRulesInvalidError('Distinct addresses take a threshold rule, not a baseline (they are counted per hour)', { rule });
    if (!(rule.z > 0) || !(rule.minimum >= 0) || (rule.scope !== 'device' && rule.scope !== 'product'))
      throw new AnomalyRulesInvalidError('A baseline rule needs z > 0, minimum ≥ 0 and scope device or product', { rule });
  }
}
