/**
 * A device's connection to the platform (docs/protocol.md): MQTT 3.1.1 over TLS, client ID =
 * device ID, clean session, authenticated by the device certificate (mutual TLS) or by a SAS
 * token made from a symmetric key (renewed before it expires by reconnecting). Lost connections
 * are retried with exponential backoff and full jitter; a refused CONNECT (bad credentials, not
 * authorized, identifier rejected, protocol version) is final: reported, never retried.
 *
 * Every QoS 1 message goes through the outgoing queue and leaves it on its PUBACK; the queue is
 * sent in order whenever the client is connected, so what was queued offline goes out first. A
 * PUBACK the queue cannot record (a full disk) leaves the message queued, to be sent again.
 *
 * Several broker addresses (the nodes of one deployment) may be given: a lost connection or a
 * failed dial moves on to the next address, round robin, after the same backoff (failover).
 *
 * Events: `connected`, `disconnected` ({ error }), `reconnecting` ({ attempt, delayMs, brokerUrl }),
 * `error` (a final ConnectionRefusedError: the client has stopped), `errorReply` (the platform
 * refused a message, protocol §3.2), `acked` (a queued message was acknowledged), `handlerError`,
 * `queueError` (QueueError, message: an acknowledgement could not be recorded), `queueRecovered`
 * ({ tornLines, corruptLines }: lines the file queue dropped when it opened, on the first connect()).
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Backoff, type BackoffOptions } from './backoff.js';
import { ClientStoppedError, ConnectionRefusedError, type DeviceError } from './errors.js';
import { IdentityStore } from './identity.js';
import { Inbox, type CommandHandler, type DesiredHandler } from './inbox.js';
import { clientTlsOptions, signDer, type DeviceKey } from './keys.js';
import { DirectoryLock } from './lock.js';
import { FileQueue, MemoryQueue, type FileQueueOptions, type MessageQueue, type QueuedMessage } from './queue.js';
import { deviceSasToken } from './sas.js';
import { SeenIds } from './seen-ids.js';
import {
  BINDING_PRESENCE,
  BINDING_RESET,
  BINDING_RESET_RESULT,
  COMMANDS,
  ERRORS,
  STATE_DELTA,
  STATE_DESIRED,
  STATE_GET,
  STATE_REPORTED,
  TELEMETRY,
  TOPIC_PREFIX,
  claimProofMessage,
  deviceTopic,
  splitDeviceTopic,
  type ErrorReply,
  type JsonObject,
  type Reading,
  type TelemetryValues,
  type UserDataReset,
  type UserDataResetResult,
} from '@bulwark/protocol';

export type DeviceCredentials =
  | {
      type: 'certificate';
      /** PKCS#8 PEM, or a key pair on a PKCS#11 token (presented through OpenSSL's pkcs11 engine). */
      key: DeviceKey;
      cert: string;
    }
  | {
      type: 'symmetric';
      /** The device key, base64 as the platform hands it out, or raw bytes. */
      key: string | Buffer;
      /** Lifetime of each token (default 3600 s, the platform's default maximum). */
      tokenLifetimeSeconds?: number;
      /** Reconnect with a fresh token this long before the current one expires (default a tenth of the lifetime, at most 300 s). */
      refreshBeforeSeconds?: number;
    };

export interface DeviceClientOptions {
  /**
   * `mqtts://host:8883` (or `mqtt://` for a plain listener, symmetric keys only), or several such
   * addresses (the nodes of one deployment): the first is dialled first, and each new attempt after
   * a failed dial or a lost connection goes to the next one, round robin, after the same backoff.
   */
  brokerUrl: string | readonly string[];
  deviceId: string;
  /** The deployment root (PEM) the broker's certificate must chain to. */
  ca: string;
  credentials: DeviceCredentials;
  /**
   * MQTT 3.1.1 (4, the default) or 5. With 5 the broker says why it ends a session: the
   * `disconnected` event carries its reason code and string (0x98 when the device was revoked,
   * disabled or quarantined, 0xA0 when its credential expired).
   */
  protocolVersion?: 4 | 5;
  /** 1 … 1200 (default 60). */
  keepaliveSeconds?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Outgoing queue (default in memory); the client closes it when stopped. */
  queue?: MessageQueue;
  /** Command IDs already run (default in memory). */
  seenCommands?: SeenIds;
  /** QoS 1 messages sent but not yet acknowledged, at most (default 20). */
  maxInflight?: number;
  /** Time for token expiry (default the system clock). */
  clock?: { now(): number };
  /** For the backoff jitter (default Math.random). */
  random?: () => number;
}

export interface DeviceClientStats {
  connects: number;
  /** Messages published (each retransmission counts). */
  sent: number;
  acked: number;
  errorReplies: number;
  commandsRun: number;
  duplicateCommands: number;
}

/** CONNACK return codes that retrying cannot fix. */
/** CONNACK codes that no retry can change (3.1.1 return codes, MQTT 5 reason codes). */
const FINAL_REFUSALS = new Set([1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8c]);

/** Why an MQTT 5 broker ended the session (its DISCONNECT packet). */
export interface ServerDisconnect {
  reasonCode: number;
  reason: string;
}

export class DeviceClient extends EventEmitter {
  readonly deviceId: string;
  readonly queue: MessageQueue;
  private readonly options: DeviceClientOptions;
  private readonly brokerUrls: readonly string[];
  /** Which of `brokerUrls` the current (or next) connection dials. */
  private brokerIndex = 0;
  private readonly backoff: Backoff;
  private readonly inbox: Inbox;
  private readonly clock: { now(): number };
  private readonly maxInflight: number;
  private readonly counters = { connects: 0, sent: 0, acked: 0, errorReplies: 0 };
  private link: MqttClient | null = null;
  private started = false;
  private stopped = false;
  /** Set when the current connection is being replaced (token refresh): reconnect at once. */
  private replacing = false;
  private connected = false;
  private lastSent = -1;
  private readonly inflight = new Set<number>();
  private retryTimer: NodeJS.Timeout | null = null;
  private stableTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  /** Handlers of other platform topics by exact suffix (e.g. `updates/available`). */
  private readonly topicHandlers = new Map<string, (payload: Buffer) => void>();
  /** Gateway mode: the filters and the handler of each child this connection speaks for (gateway.ts). */
  private readonly relayed = new Map<string, { suffixes: string[]; handler: (suffix: string, payload: Buffer) => void }>();
  /** The final refusal, once there is one. */
  failure: DeviceError | null = null;
  /** The identity directory's lock (fromIdentity), released when the client stops. */
  private identityLock: DirectoryLock | null = null;

  constructor(options: DeviceClientOptions) {
    super();
    this.options = options;
    this.deviceId = options.deviceId;
    this.brokerUrls = typeof options.brokerUrl === 'string' ? [options.brokerUrl] : [...options.brokerUrl];
    if (this.brokerUrls.length === 0) throw new RangeError('brokerUrl: give at least one broker address');
    this.queue = options.queue ?? new MemoryQueue();
    this.backoff = new Backoff(options.backoff, options.random);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.maxInflight = options.maxInflight ?? 20;
    this.inbox = new Inbox(options.seenCommands ?? new SeenIds(null), {
      send: (topic, payload) => this.enqueue(topic, payload),
      errorReply: (reply) => {
        this.counters.errorReplies++;
        this.emit('errorReply', reply satisfies ErrorReply);
      },
      handlerError: (error, where) => this.emit('handlerError', error, where),
    });
  }

  /**
   * A client for the identity in `dir` (see IdentityStore): its key (permissions checked),
   * certificate and trust anchors, a persistent queue in `dir/queue` and the command IDs it ran
   * in `dir/commands.seen`. The directory is locked for this client until it stops (`client.lock`):
   * while another live process (or client) holds it, this throws IdentityLockedError.
   */
  static fromIdentity(
    dir: string,
    options: Omit<DeviceClientOptions, 'deviceId' | 'ca' | 'credentials'> & {
      queueOptions?: FileQueueOptions;
      /** PIN of a token-held key (else BULWARK_PKCS11_PIN). */ pkcs11Pin?: string;
    },
  ): DeviceClient {
    const { queueOptions, pkcs11Pin, ...rest } = options;
    const lock = DirectoryLock.acquire(dir);
    try {
      const identity = new IdentityStore(dir, pkcs11Pin === undefined ? {} : { pkcs11Pin }).load();
      const client = new DeviceClient({
        queue: new FileQueue(join(dir, 'queue'), queueOptions),
        seenCommands: new SeenIds(join(dir, 'commands.seen')),
        ...rest,
        deviceId: identity.deviceId,
        ca: identity.ca,
        credentials: { type: 'certificate', key: identity.key, cert: identity.cert },
      });
      client.identityLock = lock;
      return client;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The broker address the current connection uses (or the next attempt will dial). */
  get brokerUrl(): string {
    return this.brokerUrls[this.brokerIndex]!;
  }

  get stats(): DeviceClientStats {
    return { ...this.counters, commandsRun: this.inbox.commandsRun, duplicateCommands: this.inbox.duplicateCommands };
  }

  /** Starts connecting (and keeps reconnecting); resolves once connected, rejects on a final refusal or stop. */
  connect(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.stopped) return Promise.reject(new ClientStoppedError());
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        this.off('connected', onConnected);
        this.off('error', onError);
        this.off('stopped', onStopped);
        if (error) reject(error);
        else resolve();
      };
      const onConnected = () => done();
      const onError = (error: Error) => done(error);
      const onStopped = () => done(new ClientStoppedError());
      this.on('connected', onConnected);
      this.on('error', onError);
      this.on('stopped', onStopped);
      if (!this.started) {
        this.started = true;
        this.reportRecovery();
        this.dial();
      }
    });
  }

  /** Disconnects and stops reconnecting; unacknowledged messages stay in the (persistent) queue. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    const link = this.link;
    this.link = null;
    if (link && this.connected) {
      // A DISCONNECT when the broker is there to read it; never wait long for a dead link.
      const gone = new Promise<void>((resolve) => link.end(false, {}, () => resolve()));
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    }
    link?.end(true);
    this.connected = false;
    this.closeStorage();
    this.emit('stopped');
  }

  // --- sending ---------------------------------------------------------------------------

  /**
   * Queues one reading (QoS 1). Throws a QueueError when the queue did not take it: QueueFullError
   * at its bound, QueueWriteError when its disk refused the write (`queue.storage_full` when full).
   */
  sendTelemetry(values: TelemetryValues, ts?: number): QueuedMessage {
    return this.enqueue(TELEMETRY, ts === undefined ? { values } : { ts, values });
  }

  /** Queues 1 to 1,000 readings as one message, stored all or nothing. */
  sendTelemetryBatch(readings: Reading[]): QueuedMessage {
    if (readings.length < 1 || readings.length > 1000) throw new RangeError('A telemetry batch holds 1 to 1,000 readings');
    return this.enqueue(TELEMETRY, { batch: readings });
  }

  /** Queues a report merged into the reported state (`null` deletes a key). */
  reportState(partial: JsonObject): QueuedMessage {
    return this.enqueue(STATE_REPORTED, { state: partial });
  }

  /**
   * Asks the platform for the desired state and delta now (`state/get`); they arrive through the
   * onDesired / onDelta handlers. Not queued: on (re)connecting they are sent anyway.
   */
  requestState(): void {
    if (this.link && this.connected) this.link.publish(deviceTopic(this.deviceId, STATE_GET), '', { qos: 0 });
  }

  /**
   * Reports a press of the device's pairing button (`binding/presence`, docs/binding.md): the
   * platform opens the device's claim window, during which a consumer holding its claim code may
   * claim it. Sent at once and never queued (a press from hours ago must not open a window now):
   * rejects when the device is offline; resolves once the platform acknowledged it.
   */
  reportPresence(): Promise<void> {
    const link = this.link;
    if (!link || !this.connected)
      return Promise.reject(new Error('The device is offline: a button press is reported only while connected'));
    return new Promise((resolve, reject) =>
      link.publish(deviceTopic(this.deviceId, BINDING_PRESENCE), '{}', { qos: 1 }, (error) => (error ? reject(error) : resolve())),
    );
  }

  /**
   * Signs a claim challenge the companion app relays from the platform over a local link (the
   * other presence proof, docs/binding.md): the nonce bound to this device's ID, with the key of
   * its certificate. Returns the signature (DER, base64) for the app to send with the claim.
   * Certificate devices only: a symmetric-key device proves presence with its button.
   */
  signClaimNonce(nonce: string): string {
    const { credentials } = this.options;
    if (credentials.type !== 'certificate') throw new Error('Only a device with a certificate key signs claim challenges');
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(nonce)) throw new Error('A claim nonce is 16-128 base64url characters');
    return signDer(credentials.key, Buffer.from(claimProofMessage(this.deviceId, nonce), 'utf8')).toString('base64');
  }

  /**
   * Erases the device's user data when the platform asks (`binding/reset`: the device was
   * unbound, transferred or its owner deleted their account; ETSI EN 303 645 5.11-1), then
   * confirms on `binding/reset/result`. `handler` erases what the previous user left (Wi-Fi
   * networks they added, schedules, names, local logs) and keeps the device's identity; if it
   * throws, the platform is told it failed and sends the reset again on the next connection.
   */
  onUserDataReset(handler: (reset: UserDataReset) => Promise<void> | void): this {
    return this.onTopic(BINDING_RESET, (payload) => {
      let reset: UserDataReset;
      try {
        reset = JSON.parse(payload.toString('utf8')) as UserDataReset;
        if (typeof reset.resetId !== 'string') throw new Error('no resetId');
      } catch (error) {
        this.emit('handlerError', error, BINDING_RESET);
        return;
      }
      void Promise.resolve()
        .then(() => handler(reset))
        .then(
          (): UserDataResetResult => ({ resetId: reset.resetId, status: 'ok' }),
          (error: unknown): UserDataResetResult => ({
            resetId: reset.resetId,
            status: 'error',
            error: String((error as Error)?.message ?? error).slice(0, 1024),
          }),
        )
        .then((result) => this.enqueue(BINDING_RESET_RESULT, result))
        .catch((error: unknown) => this.emit('handlerError', error, BINDING_RESET));
    });
  }

  /** Resolves when every queued message has been acknowledged (or rejects after `timeoutMs`). */
  drained(timeoutMs = 30_000): Promise<void> {
    if (this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAcked = () => {
        if (this.queue.size > 0) return;
        clearTimeout(timer);
        this.off('acked', onAcked);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('acked', onAcked);
        reject(new Error(`${this.queue.size} queued messages still unacknowledged after ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('acked', onAcked);
    });
  }

  /**
   * Gateway mode: queues `payload` for `d/<deviceId>/<suffix>` of a child this gateway relays (the
   * platform refuses it, and ends the session, for a device that is not its child).
   */
  publishFor(deviceId: string, suffix: string, payload: unknown): QueuedMessage {
    return this.enqueue(deviceTopic(deviceId, suffix), payload);
  }

  /**
   * Gateway mode: subscribes to `suffixes` of a child on each connection, and calls `handler`
   * with each message on the child's topics; `null` forgets the child.
   */
  relay(deviceId: string, suffixes: string[], handler: ((suffix: string, payload: Buffer) => void) | null): void {
    if (!handler) {
      const known = this.relayed.get(deviceId);
      this.relayed.delete(deviceId);
      if (known && this.link && this.connected) this.link.unsubscribe(known.suffixes.map((s) => deviceTopic(deviceId, s)));
      return;
    }
    this.relayed.set(deviceId, { suffixes, handler });
    if (this.link && this.connected)
      subscribeInChunks(this.link, Object.fromEntries(suffixes.map((s) => [deviceTopic(deviceId, s), { qos: 1 as const }])), (error) => {
        if (error) this.emit('handlerError', error, 'subscribe');
      });
  }

  /** Gateway mode: drops what is still queued for a child the gateway may no longer speak for; returns how many. */
  discardFor(deviceId: string): number {
    const prefix = deviceTopic(deviceId, '');
    let dropped = 0;
    for (let message = this.queue.after(-1); message; message = this.queue.after(message.seq)) {
      if (!message.topic.startsWith(prefix) || !this.acknowledge(message)) continue;
      this.inflight.delete(message.seq);
      dropped++;
    }
    return dropped;
  }

  private enqueue(topic: string, payload: unknown): QueuedMessage {
    const message = this.queue.append(topic, JSON.stringify(payload));
    this.pump();
    return message;
  }

  /** Sends queued messages in order while the in-flight window has room. */
  private pump(): void {
    const link = this.link;
    if (!link || !this.connected) return;
    while (this.inflight.size < this.maxInflight) {
      const message = this.queue.after(this.lastSent);
      if (!message) return;
      this.lastSent = message.seq;
      // Sending resumed below messages still in flight (after an acknowledgement that failed).
      if (this.inflight.has(message.seq)) continue;
      this.inflight.add(message.seq);
      this.counters.sent++;
      // A child's message (gateway mode) is queued with its whole topic; the device's own with the suffix.
      const topic = message.topic.startsWith(`${TOPIC_PREFIX}/`) ? message.topic : deviceTopic(this.deviceId, message.topic);
      link.publish(topic, message.payload, { qos: 1 }, (error) => {
        if (link !== this.link) return; // a connection that is gone: the message is sent again on the next
        this.inflight.delete(message.seq);
        if (error || !this.acknowledge(message)) return;
        this.counters.acked++;
        this.emit('acked', message);
        this.pump();
      });
    }
  }

  /**
   * Removes a PUBACKed message from the queue. When the queue cannot record that (a full disk), the
   * error must not reach mqtt.js, whose callback this runs in (it would end the process): it is
   * reported, and the message stays queued and goes out again (at least once) with the next pump,
   * which a message queued or acknowledged successfully starts, or on the next connection. It is
   * not sent again at once: on a full disk that would be a loop of duplicates.
   */
  private acknowledge(message: QueuedMessage): boolean {
    try {
      this.queue.ack(message.seq);
      return true;
    } catch (error) {
      this.lastSent = Math.min(this.lastSent, message.seq - 1);
      this.emit('queueError', error, message);
      return false;
    }
  }

  /** Reports what the file queue dropped when it opened: torn and unreadable lines. */
  private reportRecovery(): void {
    if (!(this.queue instanceof FileQueue)) return;
    const { tornLines, corruptLines } = this.queue;
    if (tornLines + corruptLines > 0) this.emit('queueRecovered', { tornLines, corruptLines });
  }

  /** Closes the queue and releases the identity directory. */
  private closeStorage(): void {
    this.queue.close();
    this.identityLock?.release();
  }

  /**
   * Queues `payload` (JSON) for `d/<id>/<suffix>` at QoS 1, like telemetry: sent in order, kept
   * while offline, acknowledged with an `acked` event carrying the returned message's `seq`. For
   * the device channels that have no method of their own, such as `updates/status` and `updates/report`.
   */
  publish(suffix: string, payload: unknown): QueuedMessage {
    return this.enqueue(suffix, payload);
  }

  // --- receiving -------------------------------------------------------------------------

  /** Calls `handler` with the raw payload of each message on `d/<id>/<suffix>` (QoS 1), e.g. `updates/available`. */
  onTopic(suffix: string, handler: (payload: Buffer) => void): this {
    this.topicHandlers.set(suffix, handler);
    this.subscribe([suffix], 1);
    return this;
  }

  /** Calls `handler` with each new desired state (whole) and its version. */
  onDesired(handler: DesiredHandler): this {
    this.inbox.desiredHandlers.push(handler);
    this.subscribe([STATE_DESIRED], 1);
    return this;
  }

  /** Calls `handler` with each delta (the desired keys that differ from the reported ones). */
  onDelta(handler: DesiredHandler): this {
    this.inbox.deltaHandlers.push(handler);
    this.subscribe([STATE_DELTA], 1);
    return this;
  }

  /** Runs `handler` for commands named `name`; what it returns (or throws) is the result. */
  onCommand(name: string, handler: CommandHandler): this {
    this.inbox.commandHandlers.set(name, handler);
    this.subscribe([COMMANDS], 1);
    return this;
  }

  /** The topics to subscribe to on each connection. */
  private filters(): { suffix: string; qos: 0 | 1 }[] {
    const filters: { suffix: string; qos: 0 | 1 }[] = [{ suffix: ERRORS, qos: 0 }];
    if (this.inbox.desiredHandlers.length > 0) filters.push({ suffix: STATE_DESIRED, qos: 1 });
    if (this.inbox.deltaHandlers.length > 0) filters.push({ suffix: STATE_DELTA, qos: 1 });
    if (this.inbox.commandHandlers.size > 0) filters.push({ suffix: COMMANDS, qos: 1 });
    for (const suffix of this.topicHandlers.keys()) filters.push({ suffix, qos: 1 });
    return filters;
  }

  private subscribe(suffixes: string[], qos: 0 | 1): void {
    if (!this.link || !this.connected) return; // subscribed on connect
    this.link.subscribe(
      suffixes.map((s) => deviceTopic(this.deviceId, s)),
      { qos },
      (error) => error && this.emit('handlerError', error, 'subscribe'),
    );
  }

  // --- connection ------------------------------------------------------------------------

  private connectOptions(): IClientOptions {
    const { credentials } = this.options;
    const base: IClientOptions = {
      clientId: this.deviceId,
      protocolVersion: this.options.protocolVersion ?? 4,
      clean: true,
      reconnectPeriod: 0,
      keepalive: this.options.keepaliveSeconds ?? 60,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      ca: this.options.ca,
      rejectUnauthorized: true,
    };
    if (credentials.type === 'certificate') return { ...base, ...clientTlsOptions(this.options.ca, credentials.cert, credentials.key) };
    const expiresAt = Math.floor(this.clock.now() / 1000) + this.tokenLifetime();
    return { ...base, username: this.deviceId, password: deviceSasToken(credentials.key, this.deviceId, expiresAt) };
  }

  private tokenLifetime(): number {
    const { credentials } = this.options;
    return credentials.type === 'symmetric' ? (credentials.tokenLifetimeSeconds ?? 3600) : 0;
  }

  private dial(): void {
    this.retryTimer = null;
    if (this.stopped) return;
    const link = mqtt.connect(this.brokerUrl, this.connectOptions());
    this.link = link;
    let lastError: Error | undefined;
    let serverDisconnect: ServerDisconnect | undefined;
    link.on('connect', () => this.onConnect(link));
    link.on(
      'disconnect',
      (packet) => (serverDisconnect = { reasonCode: packet.reasonCode ?? 0, reason: packet.properties?.reasonString ?? '' }),
    );
    link.on('message', (topic, payload) => this.onMessage(topic, payload));
    link.on('error', (error) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'number' && FINAL_REFUSALS.has(code)) this.fail(new ConnectionRefusedError(code));
      else lastError = error;
    });
    link.on('close', () => this.onClose(link, lastError, serverDisconnect));
  }

  private onConnect(link: MqttClient): void {
    if (link !== this.link) return;
    this.connected = true;
    this.counters.connects++;
    this.inflight.clear();
    this.lastSent = -1;
    this.stableTimer = setTimeout(() => this.backoff.reset(), this.backoff.stableMs);
    const { credentials } = this.options;
    if (credentials.type === 'symmetric') {
      const lifetime = this.tokenLifetime();
      const before = credentials.refreshBeforeSeconds ?? Math.min(300, lifetime / 10);
      this.refreshTimer = setTimeout(() => this.replace(), Math.max(0, lifetime - before) * 1000);
    }
    // `connected` once the subscriptions are in place, so handlers registered before it see
    // everything the platform sends from then on.
    const filters: Record<string, { qos: 0 | 1 }> = Object.fromEntries(
      this.filters().map((f) => [deviceTopic(this.deviceId, f.suffix), { qos: f.qos }]),
    );
    for (const [deviceId, { suffixes }] of this.relayed) for (const s of suffixes) filters[deviceTopic(deviceId, s)] = { qos: 1 };
    subscribeInChunks(link, filters, (error) => {
      if (link !== this.link) return;
      if (error) this.emit('handlerError', error, 'subscribe');
      this.emit('connected');
      this.pump();
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const prefix = deviceTopic(this.deviceId, '');
    if (!topic.startsWith(prefix)) {
      const split = splitDeviceTopic(topic);
      const child = split ? this.relayed.get(split.deviceId) : undefined;
      if (!child) return;
      try {
        child.handler(split!.suffix, payload);
      } catch (error) {
        this.emit('handlerError', error, topic);
      }
      return;
    }
    const handler = this.topicHandlers.get(topic.slice(prefix.length));
    if (handler) {
      try {
        handler(payload);
      } catch (error) {
        this.emit('handlerError', error, topic);
      }
      return;
    }
    this.inbox.receive(topic.slice(prefix.length), payload).catch((error: Error) => this.emit('handlerError', error, topic));
  }

  /** Closes the current connection to open a new one at once (a fresh token). */
  private replace(): void {
    if (!this.link || this.stopped) return;
    this.replacing = true;
    this.link.end(false);
  }

  private onClose(link: MqttClient, error: Error | undefined, server: ServerDisconnect | undefined): void {
    if (link !== this.link) return;
    this.link = null;
    const wasConnected = this.connected;
    this.connected = false;
    this.inflight.clear();
    this.clearTimers();
    link.removeAllListeners('message');
    link.end(true);
    if (wasConnected) this.emit('disconnected', { error, ...(server ? { server } : {}) });
    if (this.stopped || this.failure) return;
    if (this.replacing) {
      this.replacing = false;
      this.dial();
      return;
    }
    // The next attempt goes to the next node: the one just lost may be down for good (failover).
    this.brokerIndex = (this.brokerIndex + 1) % this.brokerUrls.length;
    const { attempt, delayMs } = this.backoff.next();
    this.emit('reconnecting', { attempt, delayMs, error, brokerUrl: this.brokerUrl });
    this.retryTimer = setTimeout(() => this.dial(), delayMs);
  }

  /** A final refusal: stop, and report it. */
  private fail(error: DeviceError): void {
    if (this.failure) return;
    this.failure = error;
    this.stopped = true;
    this.clearTimers();
    const link = this.link;
    this.link = null;
    this.connected = false;
    link?.end(true);
    this.closeStorage();
    this.emit('error', error);
  }

  private clearTimers(): void {
    for (const timer of [this.retryTimer, this.stableTimer, this.refreshTimer]) if (timer) clearTimeout(timer);
    this.retryTimer = this.stableTimer = this.refreshTimer = null;
  }
}

/** Filters in one SUBSCRIBE at most (the platform's `mqtt.maxFiltersPerSubscribe` default; more closes the connection). */
const FILTERS_PER_SUBSCRIBE = 16;

/** Subscribes to `filters` in SUBSCRIBE packets of at most FILTERS_PER_SUBSCRIBE; `done` once all are answered (first error). */
function subscribeInChunks(link: MqttClient, filters: Record<string, { qos: 0 | 1 }>, done: (error?: Error) => void): void {
  const entries = Object.entries(filters);
  let pending = Math.ceil(entries.length / FILTERS_PER_SUBSCRIBE);
  let failed: Error | undefined;
  if (pending === 0) return done();
  for (let i = 0; i < entries.length; i += FILTERS_PER_SUBSCRIBE)
    link.subscribe(Object.fromEntries(entries.slice(i, i + FILTERS_PER_SUBSCRIBE)), (error) => {
      failed ??= error ?? undefined;
      if (--pending === 0) done(failed);
    });
}
