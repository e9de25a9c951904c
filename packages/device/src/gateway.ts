/**
 * Gateway mode (protocol §3.5): a gateway device speaks for child devices it relays (BLE, Zigbee,
 * serial) over its own connection. `GatewayClient` registers children (`gateway/register`,
 * answered on `gateway/result`) and hands out a `ChildHandle` per child: telemetry, state reports,
 * desired state and commands on the child's own topics, queued in the gateway's queue with the
 * gateway's own messages and sent in order. When the platform cuts a child (an operator moved or
 * detached it, or it left service) the gateway is told on `gateway/detached` (or its next message
 * for the child is answered `gateway.not_a_child`): the handle stops receiving, what is still
 * queued for the child is dropped, and `detached` is emitted. Children need no credential of their own.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import {
  COMMANDS,
  ERRORS,
  GATEWAY_DETACHED,
  GATEWAY_REGISTER,
  GATEWAY_RESULT,
  STATE_DESIRED,
  STATE_REPORTED,
  TELEMETRY,
  splitDeviceTopic,
  type ChildDetached,
  type ChildDevice,
  type ErrorReply,
  type GatewayResult,
  type JsonObject,
  type Reading,
  type TelemetryValues,
} from '@bulwark/protocol';
import type { DeviceClient } from './client.js';
import { ChildRegistrationError } from './errors.js';
import { Inbox, type CommandHandler, type DesiredHandler } from './inbox.js';
import type { QueuedMessage } from './queue.js';
import { SeenIds } from './seen-ids.js';

/** The child's product: its ID, or its name in the organization. */
export type ChildProduct = { productId: string } | { product: string };

/** A child the gateway speaks for: the device channels of `d/<child>/`, over the gateway's connection. */
export class ChildHandle {
  readonly inbox: Inbox;

  constructor(
    private readonly gateway: GatewayClient,
    readonly device: ChildDevice,
  ) {
    this.inbox = new Inbox(new SeenIds(null), {
      send: (suffix, payload) => this.gateway.client.publishFor(this.deviceId, suffix, payload),
      errorReply: (reply) => this.gateway.emit('errorReply', this.deviceId, reply),
      handlerError: (error, where) => this.gateway.emit('handlerError', error, `${this.deviceId}/${where}`),
    });
  }

  get deviceId(): string {
    return this.device.deviceId;
  }

  sendTelemetry(values: TelemetryValues, ts?: number): QueuedMessage {
    return this.gateway.client.publishFor(this.deviceId, TELEMETRY, ts === undefined ? { values } : { ts, values });
  }

  sendTelemetryBatch(readings: Reading[]): QueuedMessage {
    if (readings.length < 1 || readings.length > 1000) throw new RangeError('A telemetry batch holds 1 to 1,000 readings');
    return this.gateway.client.publishFor(this.deviceId, TELEMETRY, { batch: readings });
  }

  reportState(partial: JsonObject): QueuedMessage {
    return this.gateway.client.publishFor(this.deviceId, STATE_REPORTED, { state: partial });
  }

  onCommand(name: string, handler: CommandHandler): this {
    this.inbox.commandHandlers.set(name, handler);
    return this;
  }

  onDesired(handler: DesiredHandler): this {
    this.inbox.desiredHandlers.push(handler);
    return this;
  }
}

/**
 * Events: `detached` (deviceId, reason): the platform cut a child from this gateway;
 * `errorReply` (deviceId, reply): the platform refused a child's message; `handlerError`.
 */
export class GatewayClient extends EventEmitter {
  private readonly children = new Map<string, ChildHandle>();
  private readonly waiting = new Map<string, (result: GatewayResult) => void>();

  constructor(readonly client: DeviceClient) {
    super();
    client.onTopic(GATEWAY_RESULT, (payload) => this.onResult(payload));
    client.onTopic(GATEWAY_DETACHED, (payload) => this.onDetached(payload));
    // A message for a child that was cut before the notice arrived is refused with gateway.not_a_child.
    client.on('errorReply', (reply: ErrorReply) => {
      const childId = reply.code === 'gateway.not_a_child' ? splitDeviceTopic(reply.topic)?.deviceId : undefined;
      if (childId) this.forget(childId, 'not a child of this gateway');
    });
  }

  /** The handle of a child registered through this client. */
  child(deviceId: string): ChildHandle | undefined {
    return this.children.get(deviceId);
  }

  get size(): number {
    return this.children.size;
  }

  /**
   * Registers a child by serial (or confirms one already this gateway's: registering again after a
   * restart answers the same child) and starts relaying it. Rejects with ChildRegistrationError
   * carrying the platform's code (`gateway.not_a_gateway`, `gateway.child_taken`,
   * `gateway.children_limit`, `gateway.registration_rate`...).
   */
  async registerChild(serial: string, product: ChildProduct, timeoutMs = 15_000): Promise<ChildHandle> {
    const id = randomUUID().replaceAll('-', '');
    const answer = new Promise<GatewayResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new ChildRegistrationError(serial, 'gateway.no_answer', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
    this.client.publish(GATEWAY_REGISTER, { id, serial, ...product });
    const result = await answer;
    if (!result.ok) throw new ChildRegistrationError(serial, result.error.code, result.error.message);
    let handle = this.children.get(result.child.deviceId);
    if (!handle) {
      handle = new ChildHandle(this, result.child);
      this.children.set(handle.deviceId, handle);
      const inbox = handle.inbox;
      this.client.relay(handle.deviceId, [COMMANDS, STATE_DESIRED, ERRORS], (suffix, payload) => {
        inbox.receive(suffix, payload).catch((error: Error) => this.emit('handlerError', error, suffix));
      });
    }
    return handle;
  }

  private onResult(payload: Buffer): void {
    let result: GatewayResult;
    try {
      result = JSON.parse(payload.toString('utf8')) as GatewayResult;
    } catch {
      return;
    }
    this.waiting.get(result.id)?.(result);
    this.waiting.delete(result.id);
  }

  private onDetached(payload: Buffer): void {
    let notice: ChildDetached;
    try {
      notice = JSON.parse(payload.toString('utf8')) as ChildDetached;
    } catch {
      return;
    }
    this.forget(notice.deviceId, notice.reason);
  }

  /** Stops relaying a child the platform cut: its handle, its subscriptions and what is still queued for it. */
  private forget(deviceId: string, reason: string): void {
    if (!this.children.delete(deviceId)) return;
    this.client.relay(deviceId, [], null);
    this.client.discardFor(deviceId);
    this.emit('detached', deviceId, reason);
  }
}
