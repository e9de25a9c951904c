/**
 * Checks on the trust the CAs carry: device certificates still active under a CA recorded as
 * revoked, a revoked CA still in use (the platform's issuing CA, a registered bootstrap CA), keys
 * below policy (device and CA), and device certificates older than the rotation policy.
 */
import { X509Certificate } from 'node:crypto';
import { DAY_MS, type Check, type CheckContext } from './check.js';

const fingerprintOf = (c: X509Certificate): string => c.fingerprint256.replace(/:/g, '').toLowerCase();
const pemBlocks = (bundle: string): string[] => bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
const STRONG_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
export const MIN_RSA_BITS = 2048;

/** Why a certificate's key is below policy, or null: RSA under 2048 bits or with a small exponent, DSA, an EC curve other than P-256/384/521. */
export function keyWeakness(cert: X509Certificate): string | null {
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) return `RSA ${details.modulusLength} bits (at least ${MIN_RSA_BITS})`;
      if ((details.publicExponent ?? 0n) < 65537n) return `RSA public exponent ${details.publicExponent} (65537 expected)`;
      return null;
    case 'dsa':
      return `DSA ${details.modulusLength} bits (DSA is deprecated)`;
    case 'ec':
      return STRONG_CURVES.has(details.namedCurve ?? '') ? null : `EC curve ${details.namedCurve} (P-256, P-384 or P-521 expected)`;
    case 'ed25519':
    case 'ed448':
      return null;
    default:
      return `key type ${key.asymmetricKeyType}`;
  }
}

async function revokedCas(ctx: CheckContext) {
  return (await ctx.evidence.revokedCas(ctx.organizationId)).map((r) => ({ ...r, cert: new X509Certificate(r.pem) }));
}

const revocationOf = (r: { subject: string; fingerprint: string; reason: string; revokedAt: number }) => ({
  subject: r.subject,
  fingerprint: r.fingerprint,
  reason: r.reason,
  revokedAt: new Date(r.revokedAt).toISOString(),
});

export const revokedCaIssuedActive: Check = {
  id: 'revoked-ca-issued-active',
  rationale: 'Certificates a revoked CA signed are as untrustworthy as the CA: revoke and re-issue them under a CA still trusted.',
  severity: 'critical',
  title: 'Device certificates still active under a revoked CA',
  async evaluate(ctx) {
    const cas = await revokedCas(ctx);
    if (cas.length === 0) return [];
    const issued = new Map(cas.map((ca) => [ca.fingerprint, [] as { serial: string; deviceId: string }[]]));
    for await (const c of ctx.evidence.activeDeviceCertificates(ctx.organizationId, ctx.now)) {
      const cert = new X509Certificate(c.pem);
      for (const ca of cas)
        if (cert.checkIssued(ca.cert) && cert.verify(ca.cert.publicKey))
          issued.get(ca.fingerprint)!.push({ serial: c.serial, deviceId: c.deviceId });
    }
    return cas
      .filter((ca) => issued.get(ca.fingerprint)!.length > 0)
      .map((ca) => {
        const certificates = issued.get(ca.fingerprint)!;
        const listed = certificates.slice(0, ctx.resourceLimit);
        return {
          subject: ca.fingerprint,
          evidence: { ca: revocationOf(ca), active: certificates.length, certificates: listed },
          resources: [
            { type: 'ca_certificate', id: ca.fingerprint },
            ...listed.flatMap((c) => [
              { type: 'certificate', id: c.serial },
              { type: 'device', id: c.deviceId },
            ]),
          ].slice(0, ctx.resourceLimit),
          resourceCount: 1 + certificates.length * 2,
        };
      });
  },
};

export const revokedCaStillActive: Check = {
  id: 'revoked-ca-still-active',
  rationale: 'A revoked CA still issuing device certificates, or still trusted for enrollment, undoes its revocation.',
  severity: 'critical',
  title: 'A revoked CA is still in use',
  async evaluate(ctx) {
    const cas = await revokedCas(ctx);
    if (cas.length === 0) return [];
    const revoked = new Map(cas.map((ca) => [ca.fingerprint, ca]));
    const chain = pemBlocks(await ctx.once('ca-chain', () => ctx.caChain())).map((pem) => new X509Certificate(pem));
    const inUse = [
      ...chain
        .filter((c) => revoked.has(fingerprintOf(c)))
        .map((c) => ({
          kind: 'platform',
          id: fingerprintOf(c),
          fingerprint: fingerprintOf(c),
          use: c.ca && fingerprintOf(c) === fingerprintOf(chain[0]!) ? 'issues device certificates' : 'trusted in the CA chain',
        })),
      ...(await ctx.evidence.liveBootstrapCas(ctx.organizationId))
        .filter((b) => revoked.has(b.fingerprint))
        .map((b) => ({ kind: 'bootstrap', id: b.id, name: b.name, fingerprint: b.fingerprint, use: 'registered: enrolls devices' })),
    ];
    if (inUse.length === 0) return [];
    return [
      {
        evidence: {
          cas: inUse.map((u) => ({ ...u, revocation: revocationOf(revoked.get(u.fingerprint)!) })),
        },
        resources: inUse
          .slice(0, ctx.resourceLimit)
          .map((u) => ({ type: u.kind === 'platform' ? 'ca_certificate' : 'bootstrap_ca', id: u.id })),
        resourceCount: inUse.length,
      },
    ];
  },
};

export const keyQualityWeak: Check = {
  id: 'key-quality-weak',
  rationale: 'A short RSA key, DSA or a weak curve can be broken or forged: re-key the device or replace the CA.',
  severity: 'high',
  title: 'Device or CA keys below policy',
  async evaluate(ctx) {
    const chain = pemBlocks(await ctx.once('ca-chain', () => ctx.caChain())).map((pem) => new X509Certificate(pem));
    const cas = [
      ...chain.map((c) => ({ type: 'ca_certificate', id: fingerprintOf(c), subject: c.subject, weakness: keyWeakness(c) })),
      ...(await ctx.evidence.liveBootstrapCas(ctx.organizationId)).map((b) => ({
        type: 'bootstrap_ca',
        id: b.id,
        subject: b.name,
        weakness: keyWeakness(new X509Certificate(b.pem)),
      })),
    ].filter((c) => c.weakness !== null);
    const devices: { serial: string; deviceId: string; weakness: string }[] = [];
    let weakDevices = 0;
    // Parsing a certificate is most of this check's cost (about 0.5 ms each): only those not seen before are.
    const known = ctx.keyVerdicts;
    const verdicts = new Map<string, string | null>();
    for await (const c of ctx.evidence.activeDeviceCertificates(ctx.organizationId, ctx.now)) {
      const cached = known.get(c.serial);
      const weakness = cached === undefined ? keyWeakness(new X509Certificate(c.pem)) : cached;
      verdicts.set(c.serial, weakness);
      if (weakness === null) continue;
      weakDevices++;
      if (devices.length < ctx.resourceLimit) devices.push({ serial: c.serial, deviceId: c.deviceId, weakness });
    }
    // Kept for the certificates still active only, so the memory follows the fleet.
    known.clear();
    for (const [serial, weakness] of verdicts) known.set(serial, weakness);
    if (cas.length === 0 && weakDevices === 0) return [];
    return [
      {
        evidence: { cas, devices, weakDeviceCertificates: weakDevices },
        resources: [
          ...cas.map((c) => ({ type: c.type, id: c.id })),
          ...devices.flatMap((d) => [
            { type: 'certificate', id: d.serial },
            { type: 'device', id: d.deviceId },
          ]),
        ].slice(0, ctx.resourceLimit),
        resourceCount: cas.length + weakDevices * 2,
      },
    ];
  },
};

export const certificateAgeBeyondPolicy: Check = {
  id: 'certificate-age-beyond-policy',
  rationale: 'A device key used for years has had years to leak; rotate certificates (and keys) within the policy.',
  severity: 'medium',
  title: 'Device certificates older than the rotation policy',
  async evaluate(ctx) {
    const maxDays = ctx.config.assessment.certificateMaxAgeDays;
    const found = await ctx.evidence.oldDeviceCertificates(ctx.organizationId, ctx.now - maxDays * DAY_MS, ctx.now, ctx.resourceLimit);
    if (found.total === 0) return [];
    return [
      {
        evidence: {
          maxAgeDays: maxDays,
          certificates: found.items.map((c) => ({
            serial: c.serial,
            deviceId: c.deviceId,
            notBefore: new Date(c.notBefore).toISOString(),
            ageDays: Math.floor((ctx.now - c.notBefore) / DAY_MS),
          })),
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
