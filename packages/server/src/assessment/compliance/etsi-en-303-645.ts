/**
 * ETSI EN 303 645 V2.1.1 (2020-06), "Cyber Security for Consumer Internet of Things: Baseline
 * Requirements": every provision of clauses 5.1 to 5.13 and 6, each with its status (M mandatory,
 * R recommended; `conditional` where the standard makes it depend on the product), a one-line
 * summary in our words, the tests of this build that give evidence for the platform's part, and
 * an assessment over the gathered evidence: what the platform does, what it observed in this
 * deployment, and what the brand must still do on the device or in its processes.
 *
 * An outcome is `met` when the platform's part holds in this deployment (no evidence item failed),
 * `attention` when an evidence item failed (an open finding, a weak setting, a failed test), and
 * `brand` when the provision is about the device or the manufacturer's process alone: the platform
 * cannot observe it, so the brand must show it.
 */
import type { ComplianceEvidence } from './evidence.js';

export type ProvisionStatus = 'M' | 'R';
export type Outcome = 'met' | 'attention' | 'brand';

export interface EvidenceItem {
  kind: 'setting' | 'count' | 'audit' | 'finding' | 'test' | 'document';
  name: string;
  value: string | number | boolean | null;
  /** false: this item shows a gap; true: it holds; absent: informative. */
  ok?: boolean;
}

export interface PlatformPart {
  /** What the platform does for this provision. */
  statement: string;
  evidence: EvidenceItem[];
}

export interface Provision {
  id: string;
  clause: string;
  status: ProvisionStatus;
  conditional: boolean;
  summary: string;
  /** Test files (repository paths) whose results are evidence for the platform's part. */
  tests: readonly string[];
  /** What the brand must still do; empty when the platform's part is the whole provision. */
  brand: string;
  /** The platform's part, or null when the provision is the device's or the manufacturer's alone. */
  platform(ev: ComplianceEvidence): PlatformPart | null;
}

export const STANDARD = { id: 'ETSI EN 303 645', version: 'V2.1.1 (2020-06)' } as const;

export const CLAUSES: Record<string, string> = {
  '5.1': 'No universal default passwords',
  '5.2': 'Implement a means to manage reports of vulnerabilities',
  '5.3': 'Keep software updated',
  '5.4': 'Securely store sensitive security parameters',
  '5.5': 'Communicate securely',
  '5.6': 'Minimize exposed attack surfaces',
  '5.7': 'Ensure software integrity',
  '5.8': 'Ensure that personal data is secure',
  '5.9': 'Make systems resilient to outages',
  '5.10': 'Examine system telemetry data',
  '5.11': 'Make it easy for users to delete user data',
  '5.12': 'Make installation and maintenance of devices easy',
  '5.13': 'Validate input data',
  '6': 'Data protection provisions for consumer IoT',
};

const S = 'packages/server/src/';
const D = 'packages/device/src/';

// Evidence builders: each reads the gathered evidence and says whether it holds.
const count = (name: string, value: number, ok?: boolean): EvidenceItem => ({
  kind: 'count',
  name,
  value,
  ...(ok === undefined ? {} : { ok }),
});
const setting = (name: string, value: string | number | boolean | null, ok?: boolean): EvidenceItem => ({
  kind: 'setting',
  name,
  value,
  ...(ok === undefined ? {} : { ok }),
});
const doc = (name: string): EvidenceItem => ({ kind: 'document', name, value: null });

/** Audit entries of an action: informative, or required (ok only when there is at least one). */
function audited(ev: ComplianceEvidence, action: string, required = false): EvidenceItem {
  const entry = ev.audit[action] ?? { count: 0, last: null };
  const value = entry.count === 0 ? 'none' : `${entry.count}, newest ${new Date(entry.last ?? 0).toISOString()}`;
  return { kind: 'audit', name: action, value, ...(required ? { ok: entry.count > 0 } : {}) };
}

/** Each named check's open findings: none is ok. */
function findings(ev: ComplianceEvidence, ...checks: string[]): EvidenceItem[] {
  return checks.map((check) => {
    const open = ev.openFindings.filter((f) => f.check === check);
    return {
      kind: 'finding',
      name: check,
      value: open.length === 0 ? 'no open finding' : open.map((f) => `${f.severity} ${f.id}`).join(', '),
      ok: open.length === 0,
    };
  });
}

const part = (statement: string, ...evidence: (EvidenceItem | EvidenceItem[])[]): PlatformPart => ({
  statement,
  evidence: evidence.flat(),
});

const deviceCredentials = (ev: ComplianceEvidence) => [
  count('devices', ev.counts.devices),
  count('active device certificates', ev.counts.activeCertificates),
  count('device symmetric keys', ev.counts.symmetricKeys),
];

export const PROVISIONS: readonly Provision[] = [
  // 5.1 No universal default passwords
  {
    id: '5.1-1',
    clause: '5.1',
    status: 'M',
    conditional: true,
    summary: 'Passwords, outside the factory default state, are unique per device or set by the user.',
    tests: [`${S}devices/identity.test.ts`, `${S}accounts/passwords.test.ts`, `${S}accounts/signup.test.ts`],
    brand: 'Any password on the device itself (local web UI, serial console, Wi-Fi setup) is unique per device or set by the user.',
    platform: (ev) =>
      part(
        'Devices authenticate with their own X.509 certificate or their own symmetric key, never a shared password. Operators and consumers choose their own passwords; `bulwark init` creates no default account or password.',
        deviceCredentials(ev),
      ),
  },
  {
    id: '5.1-2',
    clause: '5.1',
    status: 'M',
    conditional: true,
    summary: 'Pre-installed unique passwords are generated so that they cannot be guessed across a class of devices.',
    tests: [`${S}devices/symmetric-keys.test.ts`, `${S}devices/enrollment.test.ts`],
    brand: 'Factory-installed per-device secrets come from a random generator or a keyed derivation, not from serial numbers or counters.',
    platform: (ev) =>
      part(
        'Per-device symmetric keys are random, or derived from an enrollment-group key with HMAC-SHA256 over the device ID (a keyed derivation); device key pairs are made on the device and certified from a CSR.',
        count('device symmetric keys', ev.counts.symmetricKeys),
      ),
  },
  {
    id: '5.1-3',
    clause: '5.1',
    status: 'M',
    conditional: false,
    summary: 'Authentication of users against the device uses best-practice cryptography.',
    tests: [`${S}accounts/login.test.ts`, `${S}accounts/rehash.test.ts`, `${S}accounts/mfa.test.ts`, `${S}transport/tls-policy.test.ts`],
    brand: 'Local authentication on the device (app pairing, local API) uses best-practice cryptography.',
    platform: (ev) =>
      part(
        'Passwords are hashed with argon2id and rehashed when parameters rise; TOTP and single-use recovery codes; devices prove their identity in mutual TLS or with HMAC tokens.',
        setting('tls.minVersion', ev.settings.tlsMinVersion, true),
        setting(
          'organization.mfaRequiredRoles',
          ev.organization.mfaRequiredRoles.join(', ') || 'none',
          ev.organization.mfaRequiredRoles.length > 0,
        ),
        findings(ev, 'operator-without-mfa'),
      ),
  },
  {
    id: '5.1-4',
    clause: '5.1',
    status: 'M',
    conditional: true,
    summary: 'Users have a simple way to change the authentication value.',
    tests: [`${S}accounts/passwords.test.ts`, `${S}accounts/recovery.test.ts`, `${S}devices/reenroll.test.ts`],
    brand: 'A user who can authenticate to the device itself can change that credential simply.',
    platform: (ev) =>
      part(
        'Operators and consumers change or reset their password and MFA themselves; device credentials are rotated by re-enrollment or re-keying.',
        audited(ev, 'device.credentials_rotated'),
      ),
  },
  {
    id: '5.1-5',
    clause: '5.1',
    status: 'M',
    conditional: true,
    summary: 'Brute-force attacks on authentication over network interfaces are impracticable.',
    tests: [`${S}accounts/login.test.ts`, `${S}transport/mqtt/limits.test.ts`],
    brand: 'Network-facing authentication on the device itself is rate-limited or locked out.',
    platform: (ev) =>
      part(
        'Sign-in is rate-limited per address and locks an account after repeated failures; MQTT connections and authentication are rate-limited per address and device.',
        setting(
          'auth.loginRateLimitPerMinute',
          ev.settings.loginRateLimitPerMinute,
          ev.settings.loginRateLimitPerMinute <= ev.settings.maxRateLimitPerMinute,
        ),
        audited(ev, 'auth.lockout'),
        findings(ev, 'rate-limits-weak'),
      ),
  },
  // 5.2 Vulnerability reports
  {
    id: '5.2-1',
    clause: '5.2',
    status: 'M',
    conditional: false,
    summary: 'A vulnerability disclosure policy is publicly available.',
    tests: [`${S}assessment/disclosure.test.ts`],
    brand: 'Publish the policy (contact, timelines) for the product on the brand’s web site too; the platform’s security.txt points to it.',
    platform: (ev) =>
      part(
        'The platform publishes `/.well-known/security.txt` (RFC 9116) and takes reports at `POST /api/v1/disclosures`, acknowledged and tracked with deadlines.',
        setting('disclosure contact', ev.settings.disclosureContact, ev.settings.disclosureContact !== null),
        count('reports received', ev.counts.disclosures),
      ),
  },
  {
    id: '5.2-2',
    clause: '5.2',
    status: 'R',
    conditional: false,
    summary: 'Disclosed vulnerabilities are acted on in a timely manner.',
    tests: [`${S}assessment/disclosure.test.ts`],
    brand: 'Triage and fix reported vulnerabilities within the published deadlines.',
    platform: (ev) =>
      part(
        'Each report carries a triage and a resolution deadline; the `disclosure-overdue` check raises a finding when one passes.',
        audited(ev, 'disclosure.state_changed'),
        findings(ev, 'disclosure-overdue'),
      ),
  },
  {
    id: '5.2-3',
    clause: '5.2',
    status: 'R',
    conditional: false,
    summary: 'Vulnerabilities in products and services are continually monitored for, identified and rectified.',
    tests: [`${S}assessment/checks.test.ts`, `${S}assessment/routes.test.ts`, `${S}assessment/advisories/advisories.test.ts`],
    brand: 'Publish an SBOM with every release and keep the advisories imported (OSV) current.',
    platform: (ev) =>
      part(
        'Audit checks run on a schedule over the fleet and open findings with evidence; OSV advisories are matched against every release’s SBOM and the devices running it; mitigations quarantine, revoke, re-key or notify.',
        setting('assessment.intervalMinutes', ev.settings.assessmentIntervalMinutes, ev.settings.assessmentIntervalMinutes > 0),
        audited(ev, 'assessment.run', true),
        audited(ev, 'assessment.advisories_imported', true),
        findings(ev, 'firmware-known-vulnerability'),
        count('open findings (critical or high)', ev.openFindings.filter((f) => f.severity === 'critical' || f.severity === 'high').length),
      ),
  },
  // 5.3 Keep software updated
  {
    id: '5.3-1',
    clause: '5.3',
    status: 'R',
    conditional: false,
    summary: 'All software components of the device are securely updateable.',
    tests: [`${D}updates/agent.test.ts`],
    brand: 'Ship every software component of the device (bootloader, OS, application) inside updatable images.',
    platform: (ev) => part('Signed firmware images of any size are delivered to A/B slots.', count('releases', ev.counts.releases)),
  },
  {
    id: '5.3-2',
    clause: '5.3',
    status: 'M',
    conditional: true,
    summary: 'A device that is not constrained has a mechanism for the secure installation of updates.',
    tests: [`${D}updates/agent.test.ts`, `${D}updates/power-cut.test.ts`, `${S}updates/rollouts.test.ts`],
    brand: 'Run the Bulwark update agent (or an equivalent Uptane client) on the device, with A/B slots.',
    platform: (ev) =>
      part(
        'TUF image repository with an Uptane-style per-device director; staged rollouts; A/B install with automatic rollback on the device agent.',
        count('releases', ev.counts.releases, ev.counts.releases > 0),
        count('rollouts', ev.counts.rollouts),
      ),
  },
  {
    id: '5.3-3',
    clause: '5.3',
    status: 'M',
    conditional: true,
    summary: 'An update is simple for the user to apply.',
    tests: [`${D}sim/fleet-update.test.ts`],
    brand: 'The device installs updates without user steps, or offers a one-step install in its app.',
    platform: (ev) => part('Rollouts push updates to devices with no user action.', audited(ev, 'update.rollout_created')),
  },
  {
    id: '5.3-4',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'Automatic mechanisms are used for software updates.',
    tests: [`${S}updates/rollouts.test.ts`, `${S}updates/rollout-retries.test.ts`],
    brand: 'Keep automatic updates enabled on the device by default.',
    platform: (ev) => part('Rollouts are automatic, phased, retried and halted on failure.', audited(ev, 'update.rollout_created')),
  },
  {
    id: '5.3-5',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'The device checks for security updates after initialization and periodically.',
    tests: [`${D}updates/agent.test.ts`],
    brand: 'Configure the agent’s check interval; the agent checks at start and then periodically.',
    platform: () => null,
  },
  {
    id: '5.3-6',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'Automatic updates and update notifications are on by default and the user can enable, disable or postpone them.',
    tests: [],
    brand: 'Offer the user the switch and the postponement in the device or its app.',
    platform: () => null,
  },
  {
    id: '5.3-7',
    clause: '5.3',
    status: 'M',
    conditional: true,
    summary: 'Best-practice cryptography secures the update mechanism.',
    tests: [`${S}updates/tuf/offline.test.ts`, `${D}updates/tuf-client.test.ts`, `${D}updates/attacks.test.ts`],
    brand: '',
    platform: (ev) =>
      part(
        'Ed25519 signatures (offline root and targets keys, optional threshold signing on PKCS#11 tokens), SHA-256 and length pinned for every image, TLS 1.2+ transport.',
        audited(ev, 'update.release_created'),
        findings(ev, 'update-metadata-expiring'),
      ),
  },
  {
    id: '5.3-8',
    clause: '5.3',
    status: 'M',
    conditional: true,
    summary: 'Security updates are timely.',
    tests: [`${S}updates/rollout-retries.test.ts`, `${S}assessment/advisories/advisories.test.ts`],
    brand: 'Release fixes for vulnerabilities within the published timelines.',
    platform: (ev) =>
      part(
        'A release reaches the fleet through one rollout; findings and disclosure deadlines show what is overdue.',
        findings(ev, 'disclosure-overdue', 'firmware-known-vulnerability'),
        audited(ev, 'assessment.remediation_started'),
      ),
  },
  {
    id: '5.3-9',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'The device verifies the authenticity and integrity of software updates.',
    tests: [`${D}updates/attacks.test.ts`, `${D}updates/download.test.ts`],
    brand: 'Run the update agent, which verifies before it installs.',
    platform: () =>
      part(
        'The device agent verifies TUF and director metadata and the image’s hash and length before it installs; tested against every TUF attack.',
      ),
  },
  {
    id: '5.3-10',
    clause: '5.3',
    status: 'M',
    conditional: true,
    summary: 'Updates delivered over a network are verified through a trust relationship.',
    tests: [`${D}updates/compromised-server.test.ts`, `${D}updates/attacks.test.ts`, `${D}updates/director.test.ts`],
    brand: 'Pin the TUF root and the product at provisioning (`bulwark-agent setup --product`).',
    platform: (ev) =>
      part(
        'Devices pin an offline TUF root; the director is a second trust path, so a compromised server alone cannot install an image.',
        findings(ev, 'update-metadata-expiring'),
      ),
  },
  {
    id: '5.3-11',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'The user is told when a security update is required, and what risk it mitigates.',
    tests: [],
    brand: 'Tell users in the app about required security updates and their risks (release notes are stored per release).',
    platform: () => null,
  },
  {
    id: '5.3-12',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'The device tells the user when an update will disrupt its basic functioning.',
    tests: [],
    brand: 'Notify the user before an update that interrupts the device (a rollout’s schedule window limits when offers go out).',
    platform: () => null,
  },
  {
    id: '5.3-13',
    clause: '5.3',
    status: 'M',
    conditional: false,
    summary: 'The defined support period is published, clearly and accessibly.',
    tests: [`${S}assessment/checks.test.ts`, `${S}assessment/disclosure.test.ts`],
    brand: 'Show the support period at the point of sale and on the packaging.',
    platform: (ev) =>
      part(
        'Each product declares the end of its support period; `GET /api/v1/public/:org/products` publishes it.',
        count('products', ev.counts.products),
        count(
          'products with a declared support period',
          ev.counts.productsWithSupportPeriod,
          ev.counts.productsWithSupportPeriod === ev.counts.products,
        ),
        findings(ev, 'product-without-support-period'),
      ),
  },
  {
    id: '5.3-14',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary:
      'For a constrained device that cannot be updated, the rationale, the replacement support and the support period are published.',
    tests: [],
    brand: 'Publish them for any product whose software cannot be updated.',
    platform: () => null,
  },
  {
    id: '5.3-15',
    clause: '5.3',
    status: 'R',
    conditional: true,
    summary: 'A constrained device that cannot be updated is isolable and its hardware replaceable.',
    tests: [],
    brand: 'Make such devices isolable and replaceable.',
    platform: () => part('Quarantine isolates a device from everything but the update path; retirement ends its identity.'),
  },
  {
    id: '5.3-16',
    clause: '5.3',
    status: 'M',
    conditional: false,
    summary: 'The model designation of the device is clearly recognizable.',
    tests: [`${S}devices/registry.test.ts`],
    brand: 'Label the device with its model designation (or show it through a physical interface).',
    platform: (ev) =>
      part('Every device belongs to a named product with its hardware revision and firmware line.', count('products', ev.counts.products)),
  },
  // 5.4 Sensitive security parameters
  {
    id: '5.4-1',
    clause: '5.4',
    status: 'M',
    conditional: false,
    summary: 'Sensitive security parameters in persistent storage are stored securely.',
    tests: [`${D}identity.test.ts`, `${D}pkcs11.test.ts`, `${S}keys/master-key.test.ts`, `${S}keys/sealed-config.test.ts`],
    brand: 'Keep the device key in a secure element or TPM (the SDK takes a PKCS#11 URI) or in protected storage.',
    platform: (ev) =>
      part(
        'Every secret the platform keeps (CA keys, device symmetric keys, TOTP secrets, signing keys) is sealed under the master key, which may live on a PKCS#11 token.',
        setting('keys.masterKey on a PKCS#11 token', ev.settings.masterKeyOnToken),
        audited(ev, 'keys.master_rotated'),
      ),
  },
  {
    id: '5.4-2',
    clause: '5.4',
    status: 'M',
    conditional: true,
    summary: 'A hard-coded unique device identity resists tampering.',
    tests: [],
    brand: 'Protect a factory-burnt identity in hardware (secure element, fuses).',
    platform: () => null,
  },
  {
    id: '5.4-3',
    clause: '5.4',
    status: 'M',
    conditional: false,
    summary: 'No hard-coded critical security parameters in device software source code.',
    tests: [`${S}pki/ca.test.ts`],
    brand: 'Keep keys and secrets out of firmware source; provision them per device.',
    platform: () => part('The platform has no built-in keys: `bulwark init` generates the CA hierarchy and every key per deployment.'),
  },
  {
    id: '5.4-4',
    clause: '5.4',
    status: 'M',
    conditional: false,
    summary:
      'Critical security parameters for update integrity and for communication with services are unique per device and resist automated attacks on a class of devices.',
    tests: [`${S}devices/enrollment.test.ts`, `${S}devices/identity.test.ts`, `${S}pki/issuer.test.ts`],
    brand: 'Generate the device key on the device (or per device in the factory).',
    platform: (ev) =>
      part('Each device has its own certificate or symmetric key; update verification uses public keys only.', deviceCredentials(ev)),
  },
  // 5.5 Communicate securely
  {
    id: '5.5-1',
    clause: '5.5',
    status: 'M',
    conditional: false,
    summary: 'The device communicates securely with best-practice cryptography.',
    tests: [`${S}transport/tls-policy.test.ts`, `${S}transport/mqtt/connect.test.ts`],
    brand: 'Use the device SDK (mutual TLS) for every connection to the platform.',
    platform: (ev) =>
      part(
        'TLS 1.2+ only, ECDHE with AEAD suites on TLS 1.2, mutual TLS for devices.',
        setting('tls.minVersion', ev.settings.tlsMinVersion, true),
        setting('mqtt.plainPort', ev.settings.plainMqttPort, ev.settings.plainMqttPort === null),
        findings(ev, 'plain-mqtt-port'),
      ),
  },
  {
    id: '5.5-2',
    clause: '5.5',
    status: 'R',
    conditional: false,
    summary: 'Reviewed or evaluated cryptographic implementations are used.',
    tests: [],
    brand: 'Use a reviewed TLS stack on the device.',
    platform: () =>
      part(
        'Cryptography is Node.js’s OpenSSL and reviewed libraries (jose, @peculiar/x509, tuf-js, argon2); the SBOM lists them.',
        doc('sbom.cdx.json'),
      ),
  },
  {
    id: '5.5-3',
    clause: '5.5',
    status: 'R',
    conditional: false,
    summary: 'Cryptographic algorithms and primitives are updateable.',
    tests: [`${S}keys/rotation.test.ts`],
    brand: 'Ship the device’s TLS and crypto libraries in updatable images.',
    platform: () => part('Keys and certificates rotate without a new device; the device software is updated through rollouts.'),
  },
  {
    id: '5.5-4',
    clause: '5.5',
    status: 'R',
    conditional: false,
    summary: 'Device functionality over a network interface is available only after authentication.',
    tests: [`${S}transport/mqtt/acl.test.ts`, `${S}transport/http/app.test.ts`],
    brand: 'Authenticate every local network interface of the device.',
    platform: () => part('Every MQTT session and API call is authenticated; each device reaches only its own topics.'),
  },
  {
    id: '5.5-5',
    clause: '5.5',
    status: 'M',
    conditional: true,
    summary: 'Security-relevant configuration changes over a network interface require authentication.',
    tests: [`${S}accounts/isolation.test.ts`, `${S}accounts/sessions.test.ts`],
    brand: 'Require authentication for configuration changes on the device’s own interfaces.',
    platform: (ev) =>
      part(
        'Configuration changes need an authenticated operator with the permission, step-up for the most sensitive, and are audited.',
        findings(ev, 'operator-without-mfa', 'api-key-wide-or-long-lived'),
      ),
  },
  {
    id: '5.5-6',
    clause: '5.5',
    status: 'R',
    conditional: true,
    summary: 'Critical security parameters are encrypted in transit.',
    tests: [`${S}devices/enrollment.test.ts`],
    brand: '',
    platform: () => part('Certificates are issued over EST on TLS; private keys never leave the device.'),
  },
  {
    id: '5.5-7',
    clause: '5.5',
    status: 'M',
    conditional: true,
    summary: 'The confidentiality of critical security parameters sent over remotely accessible interfaces is protected.',
    tests: [`${S}devices/enrollment.test.ts`, `${S}devices/reenroll.test.ts`, `${S}devices/symmetric-keys.test.ts`],
    brand: '',
    platform: () =>
      part('Device keys are made on the device (CSR); symmetric keys and tokens are delivered once, over TLS, and stored sealed.'),
  },
  {
    id: '5.5-8',
    clause: '5.5',
    status: 'M',
    conditional: false,
    summary: 'Critical security parameters follow secure management processes.',
    tests: [`${S}keys/rotation.test.ts`, `${S}keys/custody.test.ts`, `${S}pki/hsm.test.ts`],
    brand: 'Keep offline keys (TUF root and targets, root CA) offline, under a documented key ceremony.',
    platform: (ev) =>
      part(
        'A CA hierarchy with an offline-capable root, keys sealed under a master key or held on a PKCS#11 token, rotation, revocation, an audit entry for every key event.',
        audited(ev, 'pki.certificate_revoked'),
        findings(ev, 'ca-certificate-expiring', 'device-certificate-expiring', 'symmetric-key-old', 'revoked-certificate-connected'),
      ),
  },
  // 5.6 Attack surface
  {
    id: '5.6-1',
    clause: '5.6',
    status: 'M',
    conditional: false,
    summary: 'Unused network and logical interfaces are disabled.',
    tests: [`${S}ops/metrics.test.ts`],
    brand: 'Disable unused network and logical interfaces on the device.',
    platform: (ev) =>
      part(
        'Only the HTTPS and MQTTS listeners are open by default; plain MQTT needs an explicit setting and `/metrics` a scrape token.',
        setting('mqtt.plainPort', ev.settings.plainMqttPort, ev.settings.plainMqttPort === null),
        setting('metrics scrape token set', ev.settings.metricsTokenSet),
      ),
  },
  {
    id: '5.6-2',
    clause: '5.6',
    status: 'M',
    conditional: false,
    summary: 'In the initialized state, network interfaces minimize the unauthenticated disclosure of security-relevant information.',
    tests: [`${S}accounts/recovery-timing.test.ts`, `${S}transport/http/edge.test.ts`, `${S}transport/mqtt/connect.test.ts`],
    brand: 'Keep the device’s unauthenticated interfaces silent about versions and configuration.',
    platform: () =>
      part(
        'Unauthenticated answers are uniform (unknown and known accounts answer alike, in equal time); no version banners; packets before authentication are held or dropped.',
      ),
  },
  {
    id: '5.6-3',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'Device hardware does not unnecessarily expose physical interfaces.',
    tests: [],
    brand: 'Close physical interfaces not needed in the field.',
    platform: () => null,
  },
  {
    id: '5.6-4',
    clause: '5.6',
    status: 'M',
    conditional: true,
    summary: 'A physically accessible debug interface is disabled in software.',
    tests: [],
    brand: 'Disable JTAG/UART debug in production firmware.',
    platform: () => null,
  },
  {
    id: '5.6-5',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'Only software services used or required for the intended use are enabled.',
    tests: [],
    brand: 'Enable only the services the device needs.',
    platform: (ev) =>
      part('The platform runs the listeners its configuration names, nothing else.', setting('mqtt.plainPort', ev.settings.plainMqttPort)),
  },
  {
    id: '5.6-6',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'Code is minimized to the functionality needed.',
    tests: [],
    brand: 'Keep the device image minimal.',
    platform: () => null,
  },
  {
    id: '5.6-7',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'Software runs with the least necessary privileges.',
    tests: [
      `${S}transport/mqtt/acl.test.ts`,
      `${S}transport/mqtt/gateways.test.ts`,
      `${S}apps/oauth.test.ts`,
      `${S}accounts/isolation.test.ts`,
    ],
    brand: 'Run device processes with least privilege.',
    platform: (ev) =>
      part(
        'Roles and scoped API keys for operators, scoped app tokens for companion apps, per-device topic ACLs, gateways limited to their own children.',
        findings(ev, 'api-key-wide-or-long-lived'),
      ),
  },
  {
    id: '5.6-8',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'The device includes a hardware-level access control mechanism for memory.',
    tests: [],
    brand: 'Choose hardware with memory protection.',
    platform: () => null,
  },
  {
    id: '5.6-9',
    clause: '5.6',
    status: 'R',
    conditional: false,
    summary: 'Secure development processes are followed for device software.',
    tests: [`${S}updates/release-provenance.test.ts`, `${S}architecture.test.ts`],
    brand: 'Build firmware in CI with provenance, and set a release policy that requires it.',
    platform: (ev) =>
      part(
        'Releases can require in-toto/SLSA provenance and passing test attestations (per-product release policy); the platform itself is built with types, lint, tests and an SBOM check in CI.',
        audited(ev, 'update.release_policy_set'),
      ),
  },
  // 5.7 Software integrity
  {
    id: '5.7-1',
    clause: '5.7',
    status: 'R',
    conditional: false,
    summary: 'The device verifies its software with secure boot.',
    tests: [`${D}updates/boot-backend.test.ts`],
    brand: 'Enable secure boot on the device; the agent’s A/B backends (GRUB, U-Boot) hand over to it.',
    platform: () => null,
  },
  {
    id: '5.7-2',
    clause: '5.7',
    status: 'R',
    conditional: false,
    summary: 'An unauthorized software change is alerted on and limits the device’s connectivity.',
    tests: [`${D}updates/report.test.ts`],
    brand: 'Detect unauthorized changes on the device and report them.',
    platform: () =>
      part(
        'Devices report installation results and versions; a failed verification is reported and quarantine limits a device to the update path.',
      ),
  },
  // 5.8 Personal data
  {
    id: '5.8-1',
    clause: '5.8',
    status: 'R',
    conditional: false,
    summary: 'Personal data in transit between device and services is confidential, with best-practice cryptography.',
    tests: [`${S}transport/tls-policy.test.ts`],
    brand: '',
    platform: (ev) => part('Every channel is TLS 1.2+.', setting('tls.minVersion', ev.settings.tlsMinVersion, true)),
  },
  {
    id: '5.8-2',
    clause: '5.8',
    status: 'M',
    conditional: true,
    summary: 'Sensitive personal data between device and services is confidential.',
    tests: [`${S}transport/tls-policy.test.ts`, `${S}binding/privacy.test.ts`],
    brand: 'Send sensitive personal data only over the SDK’s TLS channel.',
    platform: (ev) =>
      part(
        'TLS on every channel; only declared, consented telemetry is stored.',
        setting('mqtt.plainPort', ev.settings.plainMqttPort, ev.settings.plainMqttPort === null),
      ),
  },
  {
    id: '5.8-3',
    clause: '5.8',
    status: 'M',
    conditional: false,
    summary: 'All external sensing capabilities of the device are documented for the user.',
    tests: [`${S}binding/privacy.test.ts`],
    brand: 'Declare every sensor of each product in its privacy declaration.',
    platform: (ev) =>
      part(
        'Each product publishes a privacy declaration that consumers read before they consent.',
        count(
          'products with a privacy declaration',
          ev.counts.productsWithPrivacyDeclaration,
          ev.counts.productsWithPrivacyDeclaration === ev.counts.products,
        ),
      ),
  },
  // 5.9 Resilience
  {
    id: '5.9-1',
    clause: '5.9',
    status: 'R',
    conditional: false,
    summary: 'Resilience to outages of networks and power is built in.',
    tests: [`${S}ops/backup/backup.test.ts`, `${S}transport/mqtt/cluster.test.ts`, `${S}telemetry/durability.test.ts`],
    brand: '',
    platform: (ev) =>
      part(
        'Several nodes share PostgreSQL and Redis; acknowledged messages survive a crash; encrypted, signed backups with drills.',
        setting('backup.intervalHours', ev.settings.backupIntervalHours, ev.settings.backupIntervalHours > 0),
        audited(ev, 'backup.created', true),
        audited(ev, 'backup.drilled', true),
        findings(ev, 'backup-stale', 'backup-not-drilled'),
      ),
  },
  {
    id: '5.9-2',
    clause: '5.9',
    status: 'R',
    conditional: false,
    summary: 'The device keeps working locally without network and recovers cleanly after power loss.',
    tests: [`${D}queue.test.ts`, `${D}updates/power-cut.test.ts`],
    brand: 'Keep the device’s core function local.',
    platform: () => part('The SDK queues telemetry offline (bounded, on disk) and the update agent survives a power cut at every step.'),
  },
  {
    id: '5.9-3',
    clause: '5.9',
    status: 'R',
    conditional: false,
    summary: 'Devices connect in an expected, orderly way, considering the infrastructure’s capability.',
    tests: [`${D}backoff.test.ts`, `${S}transport/mqtt/limits.test.ts`, `${S}transport/mqtt/overload.test.ts`],
    brand: '',
    platform: () => part('The SDK reconnects with jittered exponential backoff; the broker limits connection rates and sheds overload.'),
  },
  // 5.10 Telemetry
  {
    id: '5.10-1',
    clause: '5.10',
    status: 'R',
    conditional: false,
    summary: 'Telemetry collected from devices is examined for security anomalies.',
    tests: [`${S}transport/mqtt/abuse.test.ts`, `${S}assessment/checks.test.ts`],
    brand: '',
    platform: (ev) =>
      part(
        'The broker meters every device (messages, bytes, readings, authentication failures, ACL denials) and audit checks run over the fleet.',
        audited(ev, 'assessment.run', true),
        audited(ev, 'assessment.mitigation'),
      ),
  },
  // 5.11 Deletion
  {
    id: '5.11-1',
    clause: '5.11',
    status: 'M',
    conditional: false,
    summary: 'User data can be erased from the device simply.',
    tests: [`${S}binding/consumer-routes.test.ts`, `${D}binding.test.ts`],
    brand: 'Implement a factory reset on the device that erases user data.',
    platform: (ev) =>
      part(
        'A consumer or operator reset unbinds the device and tells it to erase its user data; the device confirms.',
        audited(ev, 'binding.reset_confirmed'),
      ),
  },
  {
    id: '5.11-2',
    clause: '5.11',
    status: 'R',
    conditional: false,
    summary: 'Personal data can be removed from associated services simply.',
    tests: [`${S}accounts/profile.test.ts`, `${S}binding/privacy.test.ts`],
    brand: '',
    platform: (ev) =>
      part(
        'Account deletion erases the account, its bindings, its telemetry and the personal fields of its audit entries (the chain still verifies).',
        audited(ev, 'user.deleted'),
      ),
  },
  {
    id: '5.11-3',
    clause: '5.11',
    status: 'R',
    conditional: false,
    summary: 'Users get clear instructions on deleting their personal data.',
    tests: [],
    brand: 'Explain deletion in the app and the product documentation.',
    platform: () =>
      part('The app API offers export and deletion (`/api/v1/my/account`), documented in docs/binding.md.', doc('docs/binding.md')),
  },
  {
    id: '5.11-4',
    clause: '5.11',
    status: 'R',
    conditional: false,
    summary: 'Users get clear confirmation that personal data has been deleted.',
    tests: [`${S}accounts/profile.test.ts`],
    brand: '',
    platform: () => part('Deletion answers only once everything is erased, and the reset of a device is confirmed by the device.'),
  },
  // 5.12 Installation and maintenance
  {
    id: '5.12-1',
    clause: '5.12',
    status: 'R',
    conditional: false,
    summary: 'Installation and maintenance take minimal steps and follow usability best practice.',
    tests: [`${S}binding/claims.test.ts`],
    brand: 'Design the set-up flow around the claim code.',
    platform: () => part('Claiming a device takes a claim code and a presence step on the device.'),
  },
  {
    id: '5.12-2',
    clause: '5.12',
    status: 'R',
    conditional: false,
    summary: 'Users get guidance on setting up the device securely.',
    tests: [],
    brand: 'Write the set-up guide for the product.',
    platform: () => null,
  },
  {
    id: '5.12-3',
    clause: '5.12',
    status: 'R',
    conditional: false,
    summary: 'Users get guidance on checking that the device is set up securely.',
    tests: [],
    brand: 'Write the guide; the app can show the device’s firmware version and status from the app API.',
    platform: () => null,
  },
  // 5.13 Input validation
  {
    id: '5.13-1',
    clause: '5.13',
    status: 'M',
    conditional: false,
    summary: 'Software validates data input through user interfaces, APIs and between networks.',
    tests: [
      `${S}transport/http/strict-bodies.test.ts`,
      `${S}transport/http/injection.test.ts`,
      `${S}telemetry/payloads.test.ts`,
      `${S}transport/mqtt/frames.test.ts`,
      `${S}updates/sbom.test.ts`,
    ],
    brand: 'Validate input on the device’s own interfaces.',
    platform: () =>
      part(
        'Every HTTP body is checked against a strict schema (no coercion, no unknown fields); every MQTT payload and frame is validated and bounded; refusals carry stable codes.',
      ),
  },
  // 6 Data protection
  {
    id: '6-1',
    clause: '6',
    status: 'M',
    conditional: false,
    summary: 'Consumers get clear information on what personal data is processed, how, by whom and why, for each device and service.',
    tests: [`${S}binding/privacy.test.ts`],
    brand: 'Write each product’s privacy declaration (purposes, processors, third parties) and link the privacy notice.',
    platform: (ev) =>
      part(
        'Product privacy declarations list each purpose, the telemetry keys it covers, and whether it is required; consumers read them in the app API.',
        count(
          'products with a privacy declaration',
          ev.counts.productsWithPrivacyDeclaration,
          ev.counts.productsWithPrivacyDeclaration === ev.counts.products,
        ),
        audited(ev, 'product.privacy_declared'),
      ),
  },
  {
    id: '6-2',
    clause: '6',
    status: 'M',
    conditional: true,
    summary: 'Consent for processing personal data is obtained in a valid way.',
    tests: [`${S}binding/privacy.test.ts`],
    brand: 'Ask for consent in the app with the declaration’s words.',
    platform: (ev) =>
      part(
        'Optional purposes are off until the owner grants them; each decision is recorded with who and when.',
        count('consent decisions', ev.counts.consentDecisions),
        audited(ev, 'binding.consent_changed'),
      ),
  },
  {
    id: '6-3',
    clause: '6',
    status: 'M',
    conditional: true,
    summary: 'Consent can be withdrawn at any time.',
    tests: [`${S}binding/privacy.test.ts`, `${S}apps/oauth.test.ts`],
    brand: 'Offer withdrawal in the app.',
    platform: (ev) =>
      part(
        'Owners withdraw a purpose’s consent (collection stops at once) and withdraw an app’s access.',
        audited(ev, 'binding.consent_changed'),
      ),
  },
  {
    id: '6-4',
    clause: '6',
    status: 'R',
    conditional: true,
    summary: 'Telemetry processing of personal data is kept to the minimum necessary.',
    tests: [`${S}telemetry/collection.test.ts`, `${S}telemetry/retention.test.ts`],
    brand: 'Send only the telemetry the product needs.',
    platform: () =>
      part('Telemetry outside a product’s declaration, or of a purpose not consented, is dropped before storage; retention per product.'),
  },
  {
    id: '6-5',
    clause: '6',
    status: 'M',
    conditional: true,
    summary: 'Consumers are told what telemetry is collected, how it is used, by whom and why.',
    tests: [`${S}binding/privacy.test.ts`],
    brand: 'Describe telemetry in the privacy declaration and notice.',
    platform: (ev) =>
      part(
        'The declaration names the telemetry keys of each purpose; consumers read it per device.',
        count(
          'products with a privacy declaration',
          ev.counts.productsWithPrivacyDeclaration,
          ev.counts.productsWithPrivacyDeclaration === ev.counts.products,
        ),
      ),
  },
];
