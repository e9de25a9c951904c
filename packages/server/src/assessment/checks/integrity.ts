/** Checks on the platform's own evidence: the audit chain and its checkpoints, backups made and drilled. */
import { DAY_MS, type Check, type CheckContext } from './check.js';

export const auditChainBroken: Check = {
  id: 'audit-chain-broken',
  rationale: 'An audit log with an edited, missing or unsigned stretch no longer proves what happened.',
  severity: 'critical',
  title: 'The audit chain is broken or checkpoints are missing',
  async evaluate(ctx) {
    const report = await ctx.once('audit-verify', () => ctx.audit.verify());
    if (report.ok) return [];
    const kinds = [...new Set(report.problems.map((p) => p.kind))];
    return [
      {
        evidence: {
          entries: report.entries,
          checkpoints: report.checkpoints,
          problems: report.problems.length,
          kinds,
          first: report.problems.slice(0, 10),
        },
        resources: [{ type: 'audit_log', id: 'deployment' }],
      },
    ];
  },
};

/** When the deployment last recorded the action (backups are deployment-wide: any organization's entry counts). */
async function lastRecorded(ctx: CheckContext, action: string): Promise<number | null> {
  const { entries } = await ctx.once(`last:${action}`, () => ctx.audit.query({ action, outcome: 'success', limit: 1 }));
  return entries[0] ? Date.parse(entries[0].ts) : null;
}

export const backupStale: Check = {
  id: 'backup-stale',
  rationale: "Without a recent backup, a lost disk or a ransomware night loses the fleet's identities and history.",
  severity: 'high',
  title: 'No recent backup',
  async evaluate(ctx) {
    const maxHours = ctx.config.assessment.backupMaxAgeHours;
    const last = await lastRecorded(ctx, 'backup.created');
    if (last !== null && last >= ctx.now - maxHours * 3_600_000) return [];
    return [
      {
        evidence: { lastBackupAt: last === null ? null : new Date(last).toISOString(), maxAgeHours: maxHours },
        resources: [{ type: 'setting', id: 'backup.intervalHours' }],
      },
    ];
  },
};

export const backupNotDrilled: Check = {
  id: 'backup-not-drilled',
  rationale: 'A backup never restored is a hope: a drill (bulwark backup drill) proves it restores.',
  severity: 'medium',
  title: 'Backups not drilled recently',
  async evaluate(ctx) {
    const maxDays = ctx.config.assessment.drillMaxAgeDays;
    const last = await lastRecorded(ctx, 'backup.drilled');
    if (last !== null && last >= ctx.now - maxDays * DAY_MS) return [];
    return [
      {
        evidence: { lastDrillAt: last === null ? null : new Date(last).toISOString(), maxAgeDays: maxDays },
        resources: [{ type: 'setting', id: 'backup' }],
      },
    ];
  },
};
