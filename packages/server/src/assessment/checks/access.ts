/** Checks on who may act: operators without a second factor, API keys with wide scopes or no effective expiry. */
import { DAY_MS, type Check, type Observation } from './check.js';

const PRIVILEGED_ROLES = new Set(['owner', 'admin']);
/** Scopes that administer the organization itself: a leaked key holding one is a takeover. */
const WIDE_SCOPES = new Set(['org:manage', 'users:manage']);
/** Operators read per organization (far more than any organization has; the finding lists resourceLimit of them). */
const MAX_OPERATORS = 10_000;

export const operatorWithoutMfa: Check = {
  id: 'operator-without-mfa',
  rationale: 'A password alone is one phishing mail away from the fleet; every operator should hold a second factor.',
  severity: 'high',
  title: 'Operators without MFA',
  async evaluate(ctx) {
    const users = await ctx.evidence.operatorsWithoutMfa(ctx.organizationId, MAX_OPERATORS);
    const observations: Observation[] = [];
    for (const [subject, severity, title, match] of [
      ['privileged', 'high', 'Owners or admins without MFA', (role: string | null) => PRIVILEGED_ROLES.has(role ?? '')],
      ['other', 'medium', 'Operators without MFA', (role: string | null) => !PRIVILEGED_ROLES.has(role ?? '')],
    ] as const) {
      const affected = users.filter((u) => match(u.role));
      if (affected.length === 0) continue;
      observations.push({
        subject,
        severity,
        title,
        evidence: { users: affected.slice(0, ctx.resourceLimit).map((u) => ({ id: u.id, email: u.email, role: u.role })) },
        resources: affected.slice(0, ctx.resourceLimit).map((u) => ({ type: 'user', id: u.id })),
        resourceCount: affected.length,
      });
    }
    return observations;
  },
};

export const apiKeyRisky: Check = {
  id: 'api-key-wide-or-long-lived',
  rationale: 'An API key is a bearer secret: one that administers the organization or lives for years turns a leak into a takeover.',
  severity: 'medium',
  title: 'API keys with wide scopes or no effective expiry',
  async evaluate(ctx) {
    const maxDays = ctx.config.assessment.apiKeyMaxLifetimeDays;
    const keys = await ctx.evidence.liveApiKeys(ctx.organizationId, ctx.now, 10_000);
    const risky = keys
      .map((k) => ({
        ...k,
        reasons: [
          ...k.scopes.filter((s) => WIDE_SCOPES.has(s)).map((s) => `scope ${s}`),
          ...(k.expiresAt > ctx.now + maxDays * DAY_MS ? [`valid for more than ${maxDays} days`] : []),
        ],
      }))
      .filter((k) => k.reasons.length > 0);
    if (risky.length === 0) return [];
    const listed = risky.slice(0, ctx.resourceLimit);
    return [
      {
        evidence: {
          maxLifetimeDays: maxDays,
          keys: listed.map((k) => ({
            id: k.id,
            name: k.name,
            userId: k.userId,
            reasons: k.reasons,
            expiresAt: new Date(k.expiresAt).toISOString(),
          })),
        },
        resources: listed.map((k) => ({ type: 'api_key', id: k.id })),
        resourceCount: risky.length,
      },
    ];
  },
};
