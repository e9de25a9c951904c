/** Checks on what the brand promises its buyers: a declared support period for every product (ETSI EN 303 645 5.3-13). */
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
