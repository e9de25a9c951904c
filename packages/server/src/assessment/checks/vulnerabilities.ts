/** The check on firmware: devices running a release whose SBOM an imported advisory affects (one finding per advisory). */
import type { Check } from './check.js';

export const firmwareKnownVulnerability: Check = {
  id: 'firmware-known-vulnerability',
  rationale: 'A device running firmware with a known vulnerability can be attacked by anyone who reads the advisory; update it.',
  severity: 'high',
  title: 'Devices run firmware with a known vulnerability',
  async evaluate(ctx) {
    const advisories = (await ctx.vulnerabilities?.()) ?? [];
    return advisories
      .filter((a) => a.devices > 0)
      .map((a) => {
        const releases = a.affectedReleases.filter((r) => r.devices > 0);
        return {
          subject: a.id,
          severity: a.severity,
          title: `Devices run firmware affected by ${a.id}${a.summary ? `: ${a.summary}` : ''}`.slice(0, 300),
          evidence: {
            advisory: a.id,
            aliases: a.aliases,
            summary: a.summary,
            severity: a.severity,
            severitySource: a.severitySource,
            devices: a.devices,
            releases: a.affectedReleases.map((r) => ({
              releaseId: r.releaseId,
              productId: r.productId,
              version: r.version,
              devices: r.devices,
              components: r.components.slice(0, 20),
            })),
          },
          resources: [
            ...releases.map((r) => ({ type: 'firmware_release', id: r.releaseId })),
            ...a.deviceIds.map((id) => ({ type: 'device', id })),
          ].slice(0, ctx.resourceLimit),
          resourceCount: releases.length + a.devices,
        };
      });
  },
};
