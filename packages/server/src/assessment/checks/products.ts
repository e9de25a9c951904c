/**
 * Checks on what the brand promises its buyers: a declared support period for every product
 * (ETSI EN 303 645 5.3-13), and vulnerability reports handled within their deadlines (5.2-1).
 */
import type { Check } from './check.js';

export const productWithoutSupportPeriod: Check = {
  id: 'product-without-support-period',
  rationale:
    'Buyers must be told how long a product gets security updates (ETSI EN 303 645 5.3-13); a product without a date promises nothing.',
  severity: 'medium',
  title: 'Products without a declared support period',
  async evaluate(ctx) {
    const found = await ctx.evidence.productsWithoutSupportPeriod(ctx.organizationId, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: { products: found.items, provision: 'ETSI EN 303 645 5.3-13' },
        resources: found.items.map((p) => ({ type: 'product', id: p.id })),
        resourceCount: found.total,
      },
    ];
  },
};

export const disclosureOverdue: Check = {
  id: 'disclosure-overdue',
  rationale:
    'A reported vulnerability must be acknowledged and acted on in time (ETSI EN 303 645 5.2-1); a report past its triage or resolution deadline is a promise broken.',
  severity: 'high',
  title: 'Vulnerability reports past their deadline',
  async evaluate(ctx) {
    const found = await ctx.evidence.overdueDisclosures(ctx.organizationId, ctx.now, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: {
          reports: found.items.map((r) => ({
            id: r.id,
            title: r.title,
            state: r.state,
            acknowledgeBy: new Date(r.acknowledgeBy).toISOString(),
            resolveBy: new Date(r.resolveBy).toISOString(),
          })),
          provision: 'ETSI EN 303 645 5.2-1',
        },
        resources: found.items.map((r) => ({ type: 'disclosure', id: r.id })),
        resourceCount: found.total,
      },
    ];
  },
};
