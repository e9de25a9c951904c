/**
 * Finding notifications: a mail to the organization's owners (through the mailer: SMTP or the
 * outbox) and a webhook POST whose body is signed with HMAC-SHA256 under the organization's
 * secret (sealed at rest under the master key; shown once when set). The receiver checks
 * `X-Bulwark-Signature: sha256=<hex of HMAC(secret, raw body)>`; the body carries its own
 * `sentAt` and a unique `id` so a receiver can refuse replays.
 */
import { createHmac } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { Mailer } from '../accounts/mailer.js';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { KeyCustody } from '../keys/custody.js';
import { newId, newSecret } from '../tokens.js';
import { WebhookFailedError, WebhookInvalidError } from './errors.js';
import type { EvidenceStore } from './evidence-store.js';
import type { FindingView } from './model.js';
import type { AssessmentStore } from './store.js';

const WEBHOOK_TIMEOUT_MS = 5000;

/** Where a webhook may not point unless assessment.webhookPrivateAddresses allows it: the deployment's own network. */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  INTERNAL.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  INTERNAL.addSubnet(net, bits, 'ipv6');

/** Whether an address is loopback, private, link-local or unspecified (IPv4, IPv6, IPv4-mapped). */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1]!, 'ipv4');
  return INTERNAL.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}
const MAX_URL_LENGTH = 2048;

export const SIGNATURE_HEADER = 'x-bulwark-signature';

/** The signature header's value for a body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface NotifyResult {
  mailedTo: number;
  webhook: { url: string; status: number } | null;
}

export class FindingNotifier {
  constructor(
    private readonly store: AssessmentStore,
    private readonly evidence: EvidenceStore,
    private readonly box: KeyCustody,
    private readonly mailer: Mailer,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly limits: { webhookPrivateAddresses: boolean },
  ) {}

  /**
   * Refuses a webhook host on the deployment's own network (unless allowed): a literal address when
   * set, every address the name resolves to when posting. A name that re-resolves between the check
   * and the connection (DNS rebinding) is not caught; a firewall on egress is the complete answer.
   */
  private async refuseInternal(url: URL, resolve: boolean): Promise<void> {
    if (this.limits.webhookPrivateAddresses) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host)
      ? [host]
      : host === 'localhost' || host.endsWith('.localhost')
        ? ['127.0.0.1']
        : resolve
          ? (await lookup(host, { all: true })).map((a) => a.address)
          : [];
    const internal = addresses.find(isInternalAddress);
    if (internal)
      throw new WebhookInvalidError(
        `The webhook host ${url.hostname} is on a loopback, private or link-local address (${internal}); set assessment.webhookPrivateAddresses to allow it`,
        { host: url.hostname },
      );
  }

  private context(organizationId: string): string {
    return `assessment-webhook:${organizationId}`;
  }

  /** Sets (or, with null, removes) the organization's webhook; returns the new signing secret, shown only here. */
  async setWebhook(actor: Actor, url: string | null): Promise<{ url: string | null; secret: string | null }> {
    requirePermission(actor, 'org:manage');
    if (url !== null) await this.refuseInternal(validateWebhookUrl(url), false);
    const secret = url === null ? null : newSecret('bwhk');
    await this.store.putSettings({
      organization_id: actor.organizationId,
      webhook_url: url,
      webhook_secret: secret === null ? null : this.box.seal(secret, this.context(actor.organizationId)),
      updated_at: this.clock.now(),
    });
    await this.audit.recordBy(
      actor,
      url === null ? 'assessment.webhook_removed' : 'assessment.webhook_set',
      { type: 'organization', id: actor.organizationId },
      url === null ? {} : { url },
    );
    return { url, secret };
  }

  /** Mails the owners and posts to the webhook (when one is set); a webhook that fails is an error after the mail went. */
  async notify(organizationId: string, finding: FindingView): Promise<NotifyResult> {
    const owners = await this.evidence.ownerEmails(organizationId);
    const resources = finding.resources.map((r) => `  ${r.type} ${r.id}`).join('\n');
    for (const to of owners)
      await this.mailer.send({
        to,
        kind: 'assessment_finding',
        subject: `[Bulwark] ${finding.severity}: ${finding.title}`,
        text:
          `A security finding in your organization is ${finding.state}.\n\n` +
          `Check: ${finding.check}\nSeverity: ${finding.severity}\nFirst seen: ${finding.firstSeenAt}\nLast seen: ${finding.lastSeenAt}\n` +
          `Affected resources (${finding.resources.length + finding.moreResources}):\n${resources}` +
          (finding.moreResources > 0 ? `\n  … and ${finding.moreResources} more` : '') +
          `\n\nFinding ${finding.id}: GET /api/v1/assessment/findings/${finding.id}\n`,
      });
    const settings = await this.store.settings(organizationId);
    if (!settings?.webhook_url || !settings.webhook_secret) return { mailedTo: owners.length, webhook: null };
    const secret = this.box.openText(settings.webhook_secret, this.context(organizationId));
    const body = JSON.stringify({ id: newId(), type: 'assessment.finding', sentAt: new Date(this.clock.now()).toISOString(), finding });
    let status: number;
    try {
      await this.refuseInternal(new URL(settings.webhook_url), true);
      const response = await fetch(settings.webhook_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(secret, body) },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      status = response.status;
      await response.body?.cancel();
    } catch (error) {
      if (error instanceof WebhookInvalidError) throw error;
      throw new WebhookFailedError(`The webhook at ${settings.webhook_url} could not be reached: ${(error as Error).message}`, {
        mailedTo: owners.length,
      });
    }
    if (status < 200 || status >= 300)
      throw new WebhookFailedError(`The webhook at ${settings.webhook_url} answered ${status}; a 2xx was expected`, {
        status,
        mailedTo: owners.length,
      });
    return { mailedTo: owners.length, webhook: { url: settings.webhook_url, status } };
  }
}

function validateWebhookUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookInvalidError('The webhook must be an absolute http or https URL', { url });
  }
  if (url.length > MAX_URL_LENGTH) throw new WebhookInvalidError(`The webhook URL is longer than ${MAX_URL_LENGTH} characters`);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new WebhookInvalidError('The webhook must be an http or https URL', { protocol: parsed.protocol });
  if (parsed.username || parsed.password)
    throw new WebhookInvalidError('The webhook URL must not carry credentials: the HMAC signature authenticates the platform');
  return parsed;
}
