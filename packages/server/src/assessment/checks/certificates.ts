/** Checks on certificates: device and CA certificates ending soon, a revoked certificate still connected. */
import { X509Certificate } from 'node:crypto';
import { DAY_MS, type Check } from './check.js';

export const deviceCertificateExpiring: Check = {
  id: 'device-certificate-expiring',
  rationale: 'A device whose certificate ends cannot connect; renewal must start before it does.',
  severity: 'medium',
  title: 'Device certificates expire soon',
  async evaluate(ctx) {
    const within = ctx.config.assessment.certificateExpiryDays;
    const found = await ctx.evidence.expiringDeviceCertificates(ctx.organizationId, ctx.now + within * DAY_MS, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: {
          withinDays: within,
          certificates: found.items.map((c) => ({ serial: c.serial, deviceId: c.deviceId, notAfter: new Date(c.notAfter).toISOString() })),
          expired: found.items.filter((c) => c.notAfter <= ctx.now).length,
        },
        resources: found.items.flatMap((c) => [
          { type: 'certificate', id: c.serial },
          { type: 'device', id: c.deviceId },
        ]),
        resourceCount: found.total * 2,
      },
    ];
  },
};

/** The PEM blocks of a bundle. */
function pemBlocks(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export const caCertificateExpiring: Check = {
  id: 'ca-certificate-expiring',
  rationale: 'When a CA certificate ends, every device certificate under it stops verifying at once.',
  severity: 'high',
  title: 'CA certificates expire soon',
  async evaluate(ctx) {
    const within = ctx.config.assessment.certificateExpiryDays;
    const before = ctx.now + within * DAY_MS;
    const chain = await ctx.once('ca-chain', () => ctx.caChain());
    const cas = pemBlocks(chain)
      .map((pem) => new X509Certificate(pem))
      .filter((c) => Date.parse(c.validTo) < before)
      .map((c) => ({
        kind: 'platform',
        id: c.fingerprint256.replace(/:/g, '').toLowerCase(),
        subject: c.subject,
        notAfter: Date.parse(c.validTo),
      }));
    const bootstrap = (await ctx.evidence.expiringBootstrapCas(ctx.organizationId, before)).map((b) => ({
      kind: 'bootstrap',
      id: b.id,
      subject: b.name,
      notAfter: b.notAfter,
    }));
    const all = [...cas, ...bootstrap];
    if (all.length === 0) return [];
    return [
      {
        evidence: { withinDays: within, certificates: all.map((c) => ({ ...c, notAfter: new Date(c.notAfter).toISOString() })) },
        resources: all
          .slice(0, ctx.resourceLimit)
          .map((c) => ({ type: c.kind === 'platform' ? 'ca_certificate' : 'bootstrap_ca', id: c.id })),
        resourceCount: all.length,
      },
    ];
  },
};

export const revokedCertificateConnected: Check = {
  id: 'revoked-certificate-connected',
  rationale: 'A revoked certificate must end its sessions; a device still connected on one escaped the revocation.',
  severity: 'critical',
  title: 'Devices connected with a revoked certificate',
  async evaluate(ctx) {
    const found = await ctx.evidence.connectedWithRevokedCertificate(ctx.organizationId, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: {
          devices: found.items.map((d) => ({
            deviceId: d.deviceId,
            serial: d.serial,
            revokedAt: d.revokedAt === null ? null : new Date(d.revokedAt).toISOString(),
            connectedSince: new Date(d.connectedSince).toISOString(),
            remoteAddress: d.remoteAddress,
          })),
        },
        resources: found.items.flatMap((d) => [
          { type: 'device', id: d.deviceId },
          { type: 'certificate', id: d.serial },
        ]),
        resourceCount: found.total * 2,
      },
    ];
  },
};
