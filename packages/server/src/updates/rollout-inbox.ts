/**
 * What devices tell the platform about their updates (`d/<id>/updates/status` and `…/report`):
 * progress moves the device's row in its rollout (never back past a finished state, except a new
 * attempt after a failure), and a signed version report, checked against the key of the
 * certificate the device connected with and a counter that only increases, becomes the device's
 * latest known version. Each refusal is a DeviceMessageRefusal, which the broker answers on `d/<id>/errors`.
 */
import type { KeyObject } from 'node:crypto';
import { UPDATE_STATES, type RolloutDeviceState, type UpdateState } from '@bulwark/protocol';
import { BoundedCache } from '../bounded-cache.js';
import type { Clock } from '../clock.js';
import { DeviceMessageRefusal } from '../errors.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { DeviceReportStore } from './device-report-store.js';
import { parseSignedReport, parseStatus, reportKeyOf, reportSignatureValid } from './rollout-messages.js';
import { isTransientFailure, retryAtAfter } from './rollout-model.js';
import { ProgressWriter } from './rollout-progress.js';
import type { RolloutStore } from './rollout-store.js';
import type { Executor } from '../storage/executor.js';

/** From a finished state, only these moves are taken (a retry after a failure, or the fallback after it). */
const AFTER_FINISH: Partial<Record<UpdateState | 'pending', UpdateState[]>> = {
  succeeded: [],
  failed: ['downloading', 'rolled_back'],
  rolled_back: ['downloading'],
};

const UNFINISHED_STATES: RolloutDeviceState[] = ['pending', 'downloading', 'installing', 'rebooting', 'verifying'];
/** The states a device's row may move from to each reported state (AFTER_FINISH, turned around). */
const MOVABLE_FROM = Object.fromEntries(
  UPDATE_STATES.map((to) => [
    to,
    [...UNFINISHED_STATES, ...(Object.keys(AFTER_FINISH) as RolloutDeviceState[]).filter((from) => AFTER_FINISH[from]!.includes(to))],
  ]),
) as Record<UpdateState, RolloutDeviceState[]>;

export class DeviceUpdateInbox {
  private readonly reportKeys = new BoundedCache<KeyObject | null>(2_000);
  private readonly progress: ProgressWriter;

  constructor(
    private readonly db: Executor,
    private readonly store: RolloutStore,
    private readonly reports: DeviceReportStore,
    private readonly clock: Clock,
  ) {
    this.progress = new ProgressWriter(db, store, reports);
  }

  async message(identity: DeviceIdentity, channel: string, payload: Buffer): Promise<void> {
    if (channel === 'status') return this.status(identity, payload);
    if (channel === 'report') return this.report(identity, payload);
    throw new DeviceMessageRefusal(
      'update.channel_unknown',
      `Unknown updates channel "${channel.slice(0, 32)}": publish on updates/status or updates/report`,
    );
  }

  private async status(identity: DeviceIdentity, payload: Buffer): Promise<void> {
    const parsed = parseStatus(payload);
    if (!parsed.ok) throw new DeviceMessageRefusal('update.status_invalid', parsed.message);
    const status = parsed.value;
    // Progress in one statement (a transaction of two on success): the checks below are its WHERE.
    // Devices' statuses arriving together are committed together (rollout-progress.ts).
    // A failure (transient ones wait for a retry) and any message that statement did not take go
    // the full way, which reads the row to refuse with the reason or to drop a late message.
    if (status.state !== 'failed') {
      const move = {
        rolloutId: status.rolloutId,
        organizationId: identity.organizationId,
        deviceId: identity.deviceId,
        target: status.target,
        state: status.state,
        from: MOVABLE_FROM[status.state],
      };
      const now = this.clock.now();
      const error = status.error ?? null;
      if (await this.progress.advance(move, error, now)) return;
    }
    const row = await this.store.device(status.rolloutId, identity.organizationId, identity.deviceId);
    if (!row) throw new DeviceMessageRefusal('update.status_invalid', `This device is not in rollout ${status.rolloutId}`);
    if (row.offered_at === null)
      throw new DeviceMessageRefusal('update.status_invalid', `Rollout ${status.rolloutId} has not offered this device its release yet`);
    if (status.target !== row.target_name)
      throw new DeviceMessageRefusal(
        'update.status_invalid',
        `Rollout ${status.rolloutId} installs ${row.target_name}, not ${status.target}`,
      );
    const allowed = AFTER_FINISH[row.state];
    if (allowed && !allowed.includes(status.state)) return; // a late or repeated message: the finished state stands
    const now = this.clock.now();
    const policy = { maxAttempts: row.max_attempts, backoffSeconds: row.retry_backoff_seconds };
    const retryAt = status.state === 'failed' && isTransientFailure(status.error?.code) ? retryAtAfter(policy, row.attempts, now) : null;
    if (retryAt !== null) {
      // A transient failure with attempts left: offered again once the backoff passed (the director withdraws the release meanwhile).
      await this.store.retryLater(status.rolloutId, [identity.deviceId], retryAt, status.error!, now, this.db);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      await this.store.setState(status.rolloutId, identity.deviceId, status.state, status.error ?? null, now, trx);
      if (status.state === 'succeeded')
        await this.reports.setFirmwareVersion(identity.organizationId, identity.deviceId, row.version, now, trx);
    });
  }

  /** A certificate's public key, parsed once per process while among the last 2,000 used (the PEM is the key: it never changes). */
  private keyOf(pem: string): KeyObject | null {
    let key = this.reportKeys.get(pem);
    if (key === undefined) {
      key = reportKeyOf(pem);
      this.reportKeys.set(pem, key);
    }
    return key;
  }

  /** The PEM of the certificate the device connected with (or, for a symmetric-key device, its newest active one). */
  private async certificatePem(identity: DeviceIdentity): Promise<string | null> {
    const serial = identity.credential.type === 'certificate' ? identity.credential.certificateSerial : null;
    return this.reports.activeCertificatePem(identity.organizationId, identity.deviceId, serial);
  }

  private async report(identity: DeviceIdentity, payload: Buffer): Promise<void> {
    const parsed = parseSignedReport(payload);
    if (!parsed.ok) throw new DeviceMessageRefusal('update.report_invalid', parsed.message);
    const { report, signature } = parsed.value;
    if (report.deviceId !== identity.deviceId)
      throw new DeviceMessageRefusal('update.report_invalid', "report.deviceId must be this device's ID");
    const pem = await this.certificatePem(identity);
    const key = pem ? this.keyOf(pem) : null;
    if (!key || !reportSignatureValid(report, signature, key)) {
      throw new DeviceMessageRefusal(
        'update.report_signature_invalid',
        "The signature does not verify with this device's certificate key (ECDSA P-256 SHA-256, DER, over the canonical JSON of report)",
      );
    }
    const row = {
      device_id: identity.deviceId,
      organization_id: identity.organizationId,
      counter: report.counter,
      report: JSON.stringify(report),
      signature,
      received_at: this.clock.now(),
    };
    // The report and the version it makes the device's, in one transaction shared with the other
    // devices' successes and reports arriving with it (rollout-progress.ts).
    const accepted = await this.progress.storeReport(row, report.running.version);
    if (!accepted)
      throw new DeviceMessageRefusal('update.report_replayed', `report.counter ${report.counter} is not above the last accepted counter`);
  }
}
