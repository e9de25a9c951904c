/** Checks on device secrets and update metadata: symmetric keys past their age, TUF metadata near expiry. */
import { DAY_MS, type Check } from './check.js';

export const symmetricKeyOld: Check = {
  id: 'symmetric-key-old',
  rationale: 'A shared secret lives in the device and the platform; the longer it lives, the likelier it leaked. Rotate it.',
  severity: 'medium',
  title: 'Device symmetric keys older than policy',
  async evaluate(ctx) {
    const maxDays = ctx.config.assessment.symmetricKeyMaxAgeDays;
    const found = await ctx.evidence.staleSymmetricKeys(ctx.organizationId, ctx.now - maxDays * DAY_MS, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: {
          maxAgeDays: maxDays,
          keys: found.items.map((k) => ({ id: k.id, deviceId: k.deviceId, createdAt: new Date(k.createdAt).toISOString() })),
        },
        resources: found.items.map((k) => ({ type: 'device', id: k.deviceId })),
        resourceCount: found.total,
      },
    ];
  },
};

export const updateMetadataExpiring: Check = {
  id: 'update-metadata-expiring',
  rationale: 'Devices refuse expired TUF metadata: when a role expires unsigned, updates stop for the whole fleet.',
  severity: 'high',
  title: 'TUF or director metadata expires soon',
  async evaluate(ctx) {
    const within = ctx.config.assessment.metadataExpiryDays;
    const roles = await ctx.evidence.expiringTufMetadata(ctx.organizationId, ctx.now + within * DAY_MS);
    if (roles.length === 0) return [];
    return [
      {
        evidence: {
          withinDays: within,
          roles: roles.map((r) => ({ role: r.role, version: r.version, expiresAt: new Date(r.expiresAt).toISOString() })),
        },
        resources: roles.slice(0, ctx.resourceLimit).map((r) => ({ type: 'tuf_role', id: r.role })),
        resourceCount: roles.length,
      },
    ];
  },
};
