/**
 * What the broker does with a message a device may publish, once the ACL let it through and its
 * rate was charged: a table from channel to handler. Every handler refuses the same way, with a
 * DeviceMessageRefusal, which is answered on `d/<deviceId>/errors`, acknowledged and not stored
 * (sending it again would fail the same way). Telemetry is acknowledged only once committed.
 */
import { ErrorCodes, errorReply, type DeviceChannel, type ErrorReply, type PayloadFormat } from '@bulwark/protocol';
import type { BaseLogger } from 'pino';
import type { DeviceIdentity } from '../../devices/identity.js';
import { isObject } from '../../devices/shadow-state.js';
import { DeviceMessageRefusal } from '../../errors.js';
import type { Platform } from '../../platform.js';
import { parseTelemetry, type Reading } from '../../telemetry/payloads.js';
import { keepAllowed } from '../../telemetry/collection.js';
import { parseStatus } from '../../updates/rollout-messages.js';
import type { TelemetryWriter } from '../../telemetry/ingest.js';
import type { QuotaVerdict } from '../../telemetry/quota.js';
import type { TelemetryRow } from '../../telemetry/store.js';

/** What the inbox needs of a session. */
export interface InboxSession {
  identity: DeviceIdentity;
  /** Set once the session was told it is over its daily telemetry quota (logged once a session). */
  overQuota: boolean;
  /** The device's behaviour counters (anomaly detection), when the node counts them; a gateway's children have none of their own. */
  behaviour?: { payloadErrors: number; reboots: number; updateFailures: number };
}

/** The gateway counters the inbox moves. */
export interface InboxStats {
  payloadErrors: number;
  /** QoS 0 telemetry dropped because the telemetry writer's queue was full (QoS 1 waits instead). */
  overloadDrops: number;
  /** Telemetry messages refused because their device reached its daily quota. */
  quotaRefused: number;
  /** Telemetry messages left with no value the product's privacy declaration and the owner's consents allow (acknowledged, not stored). */
  privacyDropped: number;
  telemetryMessages: number;
}

export interface DeviceMessage<C extends DeviceChannel = DeviceChannel> {
  session: InboxSession;
  topic: string;
  channel: C;
  payload: Buffer;
  qos: number;
  /** A telemetry message's readings, parsed before it was charged to the device's reading rate. */
  readings: Reading[] | null;
}

type Handlers = { [K in DeviceChannel['kind']]: (message: DeviceMessage<Extract<DeviceChannel, { kind: K }>>) => Promise<void> | void };

export class DeviceInbox {
  private readonly handlers: Handlers = {
    telemetry: (m) => this.ingest(m),
    presence: () => undefined,
    state_reported: (m) => this.reportState(m),
    state_get: (m) => this.platform.devices.shadow.sync(m.session.identity),
    command_result: (m) => this.platform.devices.commands.complete(m.session.identity, m.channel.commandId, json(m.payload)),
    update: (m) => this.update(m),
    gateway_register: (m) => this.gateway(m),
    binding_presence: (m) => this.platform.binding.claims.devicePresence(m.session.identity),
    binding_reset_result: (m) => this.platform.binding.service.confirmReset(m.session.identity, json(m.payload)),
  };

  constructor(
    private readonly platform: Platform,
    private readonly writer: TelemetryWriter,
    private readonly stats: InboxStats,
    /** Publishes an error reply on the device's error topic. */
    private readonly reply: (deviceId: string, reply: ErrorReply) => void,
    private readonly log: Pick<BaseLogger, 'warn'>,
    /** A gateway's request on `gateway/register` (the broker answers it on `gateway/result`). */
    private readonly gateway: (message: DeviceMessage) => Promise<void>,
  ) {}

  /**
   * Handles a message; a refusal is answered on the error topic. Not an async function: a
   * telemetry message (the hot path) is handed on as the writer's own promise, with no frame or
   * promise of its own per message.
   */
  receive(message: DeviceMessage): Promise<void> | void {
    let result: Promise<void> | void;
    try {
      result = (this.handlers[message.channel.kind] as (m: DeviceMessage) => Promise<void> | void)(message);
    } catch (error) {
      return this.refused(message, error);
    }
    return result instanceof Promise ? result.catch((error: unknown) => this.refused(message, error)) : undefined;
  }

  /** Answers a refusal on the error topic; anything else is thrown on. */
  private refused(message: DeviceMessage, error: unknown): void {
    if (!(error instanceof DeviceMessageRefusal)) throw error;
    this.stats.payloadErrors++;
    if (message.session.behaviour) message.session.behaviour.payloadErrors++;
    this.reply(message.session.identity.deviceId, errorReply(message.topic, error.code, error.message));
  }

  /** The readings of a telemetry payload, or null after answering on the error topic what is wrong with it. */
  readings(session: InboxSession, topic: string, payload: Buffer, format: PayloadFormat): Reading[] | null {
    try {
      return parseTelemetry(payload, this.platform.clock.now(), format);
    } catch (error) {
      if (!(error instanceof DeviceMessageRefusal)) throw error;
      this.stats.payloadErrors++;
      if (session.behaviour) session.behaviour.payloadErrors++;
      this.reply(session.identity.deviceId, errorReply(topic, error.code, error.message));
      return null;
    }
  }

  /** An update message for the rollouts; a status the device reports also counts towards its behaviour (reboots, failed updates). */
  private async update({ session, channel, payload }: DeviceMessage<Extract<DeviceChannel, { kind: 'update' }>>): Promise<void> {
    await this.platform.updates.rollouts.deviceMessage(session.identity, channel.name, payload);
    if (channel.name !== 'status' || !session.behaviour) return;
    const status = parseStatus(payload);
    if (!status.ok) return;
    if (status.value.state === 'rebooting') session.behaviour.reboots++;
    else if (status.value.state === 'failed' || status.value.state === 'rolled_back') session.behaviour.updateFailures++;
  }

  private async reportState({ session, payload }: DeviceMessage): Promise<void> {
    const body = json(payload);
    if (!isObject(body) || Object.keys(body).length !== 1 || !('state' in body))
      throw new DeviceMessageRefusal(ErrorCodes.payloadInvalid, 'A state report is { "state": { … } }');
    await this.platform.devices.shadow.report(session.identity, body.state);
  }

  /**
   * Stores a message's readings within the device's daily quota: QoS 1 resolves (and is
   * acknowledged) once they are committed. A message over the quota is refused whole, answered on
   * the error topic and acknowledged: resending it cannot succeed before the day ends.
   *
   * Synchronous while this node knows the device's collection rules and quota (every message but a
   * device's first of the day): the QoS 1 promise is the writer's own, nothing else is allocated
   * per message but the rows. Otherwise `ingestAfterLoading` reads them first.
   */
  private ingest(message: DeviceMessage): Promise<void> | void {
    // Not parsed: already answered on the error topic and acknowledged (a retry would fail the same way), not stored.
    if (!message.readings) return;
    const { identity } = message.session;
    // `known` answers null for "everything" (no declaration) and undefined for "not cached": only the latter reads storage.
    const allowed = this.platform.telemetry.collection.known(identity.deviceId, identity.productId);
    if (allowed === undefined) return this.ingestAfterLoading(message);
    const readings = allowed ? keepAllowed(message.readings, allowed) : message.readings;
    if (readings.length === 0) {
      this.stats.privacyDropped++;
      return;
    }
    const verdict = this.platform.telemetry.quota.admitKnown(identity, readings.length, message.payload.length);
    if (!verdict) return this.ingestAfterLoading(message);
    return this.store(message, readings, verdict);
  }

  /** The same, once the device's collection rules and quota are loaded. */
  private async ingestAfterLoading(message: DeviceMessage): Promise<void> {
    const { identity } = message.session;
    // Data minimisation: only the values the product declares for purposes in force are stored (telemetry/collection.ts).
    const collection = this.platform.telemetry.collection;
    let allowed = collection.known(identity.deviceId, identity.productId);
    if (allowed === undefined) allowed = await collection.allowed(identity.deviceId, identity.organizationId, identity.productId);
    const readings = allowed ? keepAllowed(message.readings!, allowed) : message.readings!;
    if (readings.length === 0) {
      this.stats.privacyDropped++;
      return;
    }
    const verdict = await this.platform.telemetry.quota.admit(identity, readings.length, message.payload.length);
    await this.store(message, readings, verdict);
  }

  private store({ session, topic, payload, qos }: DeviceMessage, readings: Reading[], verdict: QuotaVerdict): Promise<void> | void {
    const { identity } = session;
    if (!verdict.admitted) {
      this.stats.quotaRefused++;
      if (!session.overQuota) {
        session.overQuota = true;
        this.log.warn(
          { deviceId: identity.deviceId, exceeded: verdict.exceeded, used: verdict.used, limit: verdict.limit },
          'device over its daily telemetry quota: telemetry refused until 00:00 UTC',
        );
      }
      const message = `Daily telemetry quota reached: ${verdict.used} of ${verdict.limit} ${verdict.exceeded} stored today; this message (${verdict.exceeded === 'readings' ? readings.length : payload.length} ${verdict.exceeded}) is refused, as is telemetry until 00:00 UTC`;
      this.reply(identity.deviceId, errorReply(topic, ErrorCodes.telemetryQuotaExceeded, message));
      return;
    }
    const now = this.platform.clock.now();
    const rows: TelemetryRow[] = new Array(readings.length);
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      rows[i] = {
        organization_id: identity.organizationId,
        device_id: identity.deviceId,
        ts: r.ts,
        received_at: now,
        data: JSON.stringify(r.values),
      };
    }
    this.stats.telemetryMessages++;
    if (qos === 0) {
      if (!this.writer.offer(rows)) this.stats.overloadDrops++;
      return;
    }
    return this.writer.write(rows);
  }
}

/** A JSON payload, or a refusal saying it is not JSON. */
function json(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw new DeviceMessageRefusal(ErrorCodes.payloadNotJson, 'Payload is not valid JSON');
  }
}
