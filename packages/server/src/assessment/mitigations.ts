/**
 * Mitigation actions on a finding, each through the service that owns what it changes:
 * quarantine the devices it names (device lifecycle; the update path stays open), revoke the
 * certificates it names (PKI: the CRL is republished and brokers drop the sessions), force a
 * re-key of its devices (revoke every certificate and issue an enrollment token), or notify the
 * owners and the organization's webhook. Each action is audited with what it did per resource.
 */
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { BulwarkError } from '../errors.js';
import type { DevicesService } from '../devices/service.js';
import type { EnrollmentService } from '../devices/enrollment.js';
import type { PkiService } from '../pki/service.js';
import { MitigationNotApplicableError } from './errors.js';
import type { FindingView, Mitigation, ResourceRef } from './model.js';
import type { FindingNotifier, NotifyResult } from './notify.js';
import type { AssessmentService } from './service.js';

export interface ResourceOutcome {
  resource: ResourceRef;
  outcome: 'done' | 'skipped' | 'failed';
  code?: string;
  message?: string;
  /** rekey: the device's new one-time enrollment token (shown here only; never in the audit log). */
  enrollmentToken?: string;
}

export interface MitigationResult {
  findingId: string;
  action: Mitigation;
  results: ResourceOutcome[];
  notified?: NotifyResult;
}

const RESOURCE_OF: Record<Exclude<Mitigation, 'notify'>, string> = { quarantine: 'device', revoke: 'certificate', rekey: 'device' };

export class MitigationService {
  constructor(
    private readonly findings: AssessmentService,
    private readonly devices: DevicesService,
    private readonly enrollment: EnrollmentService,
    private readonly pki: PkiService,
    private readonly notifier: FindingNotifier,
    private readonly audit: AuditService,
  ) {}

  async act(actor: Actor, findingId: string, action: Mitigation): Promise<MitigationResult> {
    requirePermission(actor, 'devices:write');
    const finding = await this.findings.findingOf(actor.organizationId, findingId);
    if (finding.state === 'resolved')
      throw new MitigationNotApplicableError('The finding is resolved: there is nothing left to mitigate', { state: finding.state });
    // A re-key is a credential rotation per device: asked once, before any device is touched.
    if (action === 'rekey') this.enrollment.requireRotationStepUp(actor);
    const result: MitigationResult =
      action === 'notify'
        ? await this.notify(actor, finding)
        : { findingId, action, results: await this.onResources(actor, finding, action) };
    await this.audit.recordBy(
      actor,
      'assessment.mitigation',
      { type: 'finding', id: findingId },
      {
        check: finding.check,
        action,
        results: result.results.map(({ enrollmentToken: _token, ...kept }) => kept),
        ...(result.notified ? { notified: result.notified } : {}),
      },
      undefined,
      { outcome: result.results.some((r) => r.outcome === 'failed') ? 'failure' : 'success' },
    );
    return result;
  }

  private async notify(actor: Actor, finding: FindingView): Promise<MitigationResult> {
    try {
      const notified = await this.notifier.notify(actor.organizationId, finding);
      return { findingId: finding.id, action: 'notify', results: [], notified };
    } catch (error) {
      await this.audit.recordBy(
        actor,
        'assessment.mitigation',
        { type: 'finding', id: finding.id },
        { check: finding.check, action: 'notify', error: (error as Error).message },
        undefined,
        { outcome: 'failure' },
      );
      throw error;
    }
  }

  private async onResources(actor: Actor, finding: FindingView, action: Exclude<Mitigation, 'notify'>): Promise<ResourceOutcome[]> {
    const targets = finding.resources.filter((r) => r.type === RESOURCE_OF[action]);
    if (targets.length === 0)
      throw new MitigationNotApplicableError(`The finding names no ${RESOURCE_OF[action]}: ${action} does not apply to it`, {
        check: finding.check,
        action,
      });
    const results: ResourceOutcome[] = [];
    for (const resource of targets) {
      try {
        if (action === 'quarantine') {
          const device = await this.devices.get(actor, resource.id);
          if (device.status === 'quarantined') {
            results.push({ resource, outcome: 'skipped', message: 'already quarantined' });
            continue;
          }
          await this.devices.transition(actor, resource.id, 'quarantine', `assessment finding ${finding.id} (${finding.check})`);
        } else if (action === 'revoke') {
          await this.pki.revoke({ organizationId: actor.organizationId, serial: resource.id, reason: 'keyCompromise' }, auditActor(actor));
        } else {
          const rotated = await this.enrollment.rotateCredentials(actor, resource.id, 'keyCompromise');
          results.push({ resource, outcome: 'done', enrollmentToken: rotated.token });
          continue;
        }
        results.push({ resource, outcome: 'done' });
      } catch (error) {
        if (!(error instanceof BulwarkError)) throw error;
        results.push({ resource, outcome: 'failed', code: error.code, message: error.message });
      }
    }
    return results;
  }
}
