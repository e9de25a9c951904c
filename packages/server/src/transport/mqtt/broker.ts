/**
 * The device gateway: an Aedes MQTT broker (MQTT 3.1.1 and 5) in the platform process, listening on TLS (8883 by
 * default) with client certificates requested and checked against the device issuing CA, our
 * issued-certificate records and the device's status. A device without a certificate logs in
 * with its device ID as user name and a short-lived HMAC token as password. Every packet then
 * goes through the identity-bound ACL (acl.ts), is charged to the device's rates, then handed to
 * the device inbox (device-inbox.ts), which acknowledges telemetry only once committed; presence is
 * recorded by presence.ts; status changes and revocations made on any node drop the device's live
 * session within a second (credential-watcher.ts polls the devices and PKI services).
 *
 * Plain MQTT (no TLS) is off; `mqtt.plainPort` opens it for token-authenticated devices only.
 *
 * MQTT 5 clients are held to the same rules and told why in reason codes: a refused publish gets
 * PUBACK 0x87 and the session is then ended with DISCONNECT 0x87, a session ended by the platform
 * carries 0x98 (administrative action), 0xA0 (credential expired) or 0x96 (rate); topic aliases
 * are off and the packet size limit is announced in the CONNACK.
 *
 * One device cannot hurt the others (docs/protocol.md, section 4): the transport guard (guard.ts)
 * holds what a client sends behind its CONNECT until the CONNACK and enforces the packet, filter,
 * QoS and rate limits on the bytes; the per-device meters (device-meters.ts) keep rates across
 * reconnects and bound reconnects; sessions hold at most `maxSubscriptionsPerSession` filters; the
 * will of a session the platform ends is dropped. Sign-ins with a token (no client certificate) are
 * counted per source address by the device doors' failure limiter (transport/http/failure-limiter.ts,
 * in Redis across the deployment when it has one): past `auth.loginRateLimitPerMinute` failures in
 * a minute, the address's next token sign-ins are refused "server unavailable" before any check
 * until the minute ends; certificate sign-ins from that address and other addresses go on.
 */
import type { X509Certificate } from 'node:crypto';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type Connection } from 'aedes';
import {
  BINDING_RESET,
  deviceTopic,
  errorReply,
  ErrorCodes,
  ERRORS,
  filterMatches,
  GATEWAY_DETACHED,
  GATEWAY_RESULT,
  REQUEST_ID,
  splitDeviceTopic,
  STATE_DESIRED,
  type DeviceChannel,
  type ErrorReply,
  type GatewayResult,
} from '@bulwark/protocol';
import type { BaseLogger } from 'pino';
import { zeroCounts, type BehaviourCounts, type BehaviourRecorder } from '../../assessment/anomaly/recorder.js';
import type { DeviceEventSource } from '../../binding/live.js';
import { DeviceAuthenticationError, heldIdentity, type DeviceIdentity } from '../../devices/identity.js';
import type { DeviceMessenger, ReplyTo } from '../../devices/messaging.js';
import type { Platform } from '../../platform.js';
import { TelemetryWriter } from '../../telemetry/ingest.js';
import type { ChildChange } from '../../devices/gateway-feed.js';
import type { ChildView } from '../../devices/gateways.js';
import { BulwarkError, isStorageUnavailable, RateLimitedError } from '../../errors.js';
import { limited, type FailureLimiter } from '../http/failure-limiter.js';
import {
  authorizeChildPublish,
  authorizeChildSubscribe,
  authorizeDevicePublish,
  authorizeDeviceSubscribe,
  deviceChannelOwner,
  mayDeliver,
  mayDeliverToGateway,
  type AclDecision,
  type ChildStatus,
} from './acl.js';
import {
  clientOf,
  discardWill,
  dropNumberCache,
  dropSubscriptions,
  forgetConnectPacket,
  refreshKeepalive,
  roomForSubscription,
  slimClient,
  takeKeepalive,
} from './client-state.js';
import { BrokerDeviceEvents } from './device-events.js';
import { KeepaliveSweep, type KeepaliveWatched } from './keepalive.js';
import { redisBackends, type RedisBackends } from './cluster.js';
import { CredentialWatcher, lostStanding } from './credential-watcher.js';
import { DeviceInbox, type DeviceMessage, type InboxSession, type InboxStats } from './device-inbox.js';
import { credentialExpiry, GatewayRoster, type GatewayState } from './gateway-roster.js';
import { DeviceMeters, type DeviceMeter, type MeterRates } from './device-meters.js';
import { ExpirySchedule, type Expiring } from './expiry-schedule.js';
import { KEEPALIVE_LIMIT_SECONDS, normalizeConnect } from './connect-policy.js';
import type { FrameError, FrameErrorCode } from './frames.js';
import { connectionCeiling, openFileLimit } from './fd-limit.js';
import { ConnectionGuard, MAX_RATE_DEBT_MS, TokenBucket } from './guard.js';
import { PresenceRecorder, type SessionPresence } from './presence.js';
import { SERVER_TLS } from '../tls-policy.js';

/** The listener, its limits and the per-device rates (MeterRates: packets, readings, bytes, connects). */
export interface MqttOptions extends MeterRates {
  host: string;
  /** TLS listener (0 picks a free port). */
  port: number;
  /** Plain MQTT for token-authenticated devices; null keeps it closed. */
  plainPort: number | null;
  /** Redis shared by the nodes of one deployment; null when this node is alone. */
  redisUrl: string | null;
  maxPacketBytes: number;
  maxConnections: number;
  /** New TCP connections accepted per second (a reconnect storm or a flood is cut before the TLS handshake). */
  connectsPerSecond: number;
  /** How often the credential watcher polls for status changes and revocations. */
  watchIntervalMs: number;
  /** Telemetry group commit. */
  maxBatch: number;
  maxPending: number;
  /** Per-session bounds (docs/protocol.md, section 4). */
  maxSubscriptionsPerSession: number;
  maxFiltersPerSubscribe: number;
  /** Largest CONNECT accepted before authentication. */
  maxConnectBytes: number;
  /** Time for the TLS handshake, then for the CONNECT. */
  connectTimeoutMs: number;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Trust anchors for client certificates: the device issuing CA and the root. */
  clientCa: string;
}

interface Session extends InboxSession, SessionPresence, Expiring, KeepaliveWatched {
  client: Client;
  /** Aedes calls this for every packet it reads once the session holds its keep-alive (keepalive.ts): one function for all sessions. */
  refresh: (this: Session) => void;
  /** The device's rate buckets (device-meters.ts): packets, telemetry readings, payload bytes (and connects). */
  meter: DeviceMeter;
  /** Refusals already logged for this session (each kind once: a device must not be able to fill the log); null until the first (most sessions never have one, and an idle connection's every byte counts). */
  logged: Set<string> | null;
  /** The children a gateway session may speak for (null: the device is not a gateway). */
  gateway: GatewayState | null;
  /** The device's behaviour counters (assessment/anomaly/recorder.ts), shared by its sessions on this node. */
  behaviour: BehaviourCounts;
  /** When the session authenticated (ms epoch): a takeover's evidence says how long the replaced one lasted. */
  since: number;
  /** The status of each child, for the ACL (never a child: a function of `gateway`). */
  childStatus: ChildStatus;
}

/** Subscriptions a gateway session may hold per child beyond maxSubscriptionsPerSession (commands, desired, delta, errors). */
const SUBSCRIPTIONS_PER_CHILD = 4;
const NO_CHILDREN: ChildStatus = () => undefined;
/** Where an acknowledged, refused message goes: `$` topics are closed to devices, so to no one. */
const REFUSED_SINK = '$bulwark/refused';

export interface GatewayStats extends InboxStats {
  connectionsRefused: number;
  authFailures: number;
  /** Token sign-ins refused unchecked: their source address failed too many in the last minute. */
  authLockedOut: number;
  /** CONNECTs answered "server unavailable" because the database could not check them. */
  connectsUnavailable: number;
  /** Sessions ended because a QoS 1 message could not be stored (storage unavailable): not acknowledged. */
  storageDisconnects: number;
  aclDenied: number;
  oversized: number;
  /** QoS 0 messages over their device's publish rate, dropped. */
  rateLimitedDrops: number;
  sessionsDropped: number;
  /** Topic filters refused because the session held maxSubscriptionsPerSession already. */
  subscriptionsRefused: number;
  /** Connections ended for a SUBSCRIBE or UNSUBSCRIBE with more than maxFiltersPerSubscribe filters. */
  filterLimitRefused: number;
  /** Connections ended for a QoS 2 PUBLISH. */
  qos2Refused: number;
  /** Connections whose first packet was not a CONNECT (a CONNECT over maxConnectBytes counts as oversized). */
  preAuthRefused: number;
  /** Sessions ended for sending far beyond their packet rate. */
  rateDisconnects: number;
  /** CONNECTs refused because the device connected more often than deviceConnectsPerMinute. */
  deviceConnectsRefused: number;
  /** Wills not published because the platform ended the session or the device lost its standing. */
  willsDropped: number;
  /** TLS handshakes that failed or did not finish within connectTimeoutMs. */
  tlsFailures: number;
  /** Messages gateways relayed for their children. */
  gatewayRelayed: number;
  /** Children cut from a gateway session of this node (moved, detached, out of service). */
  childrenCut: number;
}

const RETURN = { badCredentials: 4, notAuthorized: 5, identifierRejected: 2, serverUnavailable: 3 } as const;
/** MQTT 5 DISCONNECT reason codes the gateway sends (MQTT 3.1.1 clients just see the connection close). */
export const DISCONNECT_REASON = {
  notAuthorized: 0x87,
  rateTooHigh: 0x96,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
  serverBusy: 0x89,
  qosNotSupported: 0x9b,
  maximumConnectTime: 0xa0,
} as const;
/** What each refusal of the transport guard counts as, and the MQTT 5 reason code a session is told (null: closed). */
const FRAME_REFUSALS: Record<FrameErrorCode, { stat: keyof GatewayStats; reasonCode: number | null }> = {
  too_large: { stat: 'oversized', reasonCode: null },
  not_connect: { stat: 'preAuthRefused', reasonCode: null },
  too_many_filters: { stat: 'filterLimitRefused', reasonCode: DISCONNECT_REASON.quotaExceeded },
  qos_not_supported: { stat: 'qos2Refused', reasonCode: DISCONNECT_REASON.qosNotSupported },
  rate_exceeded: { stat: 'rateDisconnects', reasonCode: DISCONNECT_REASON.rateTooHigh },
};
/** Longest MQTT 5 session kept after its connection ends (a device asking for more gets this). */
const SESSION_EXPIRY_LIMIT_SECONDS = 24 * 3600;
/** How often the per-device meters of devices gone quiet are forgotten. */
const METER_PRUNE_MS = 60_000;
/** Addresses whose token lockout was logged, remembered at most this many (a flood from many addresses must not grow it). */
const LOCKOUTS_REMEMBERED = 10_000;

/**
 * The client certificate the connection came with, parsed once per sign-in (undefined: it signs in
 * with a token, or not at all).
 */
function peerCertificate(transport: { socket: Socket; protocol: 'mqtts' | 'mqtt' }): X509Certificate | undefined {
  return transport.protocol === 'mqtts' ? (transport.socket as TLSSocket).getPeerX509Certificate() : undefined;
}

function authError(message: string, code: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

export class MqttGateway implements DeviceMessenger {
  readonly stats: GatewayStats = {
    connectionsRefused: 0,
    authFailures: 0,
    authLockedOut: 0,
    connectsUnavailable: 0,
    storageDisconnects: 0,
    aclDenied: 0,
    payloadErrors: 0,
    oversized: 0,
    rateLimitedDrops: 0,
    overloadDrops: 0,
    quotaRefused: 0,
    privacyDropped: 0,
    telemetryMessages: 0,
    sessionsDropped: 0,
    subscriptionsRefused: 0,
    filterLimitRefused: 0,
    qos2Refused: 0,
    preAuthRefused: 0,
    rateDisconnects: 0,
    deviceConnectsRefused: 0,
    willsDropped: 0,
    tlsFailures: 0,
    gatewayRelayed: 0,
    childrenCut: 0,
  };
  readonly writer: TelemetryWriter;
  private broker!: Aedes;
  private tlsServer: TlsServer | null = null;
  private clientCa = '';
  private plainServer: TcpServer | null = null;
  private readonly sessions = new Map<string, Session>();
  private readonly presence: PresenceRecorder;
  private readonly inbox: DeviceInbox;
  private readonly watcher: CredentialWatcher;
  private readonly roster = new GatewayRoster();
  private readonly onChildChange = (change: ChildChange): void => this.childChanged(change);
  /** Every connection's guard reports its refusals here (one function for all of them). */
  private readonly frameRefused = (conn: ConnectionGuard, error: FrameError): void => this.onFrameRefused(conn, error);
  private readonly sockets = new WeakMap<object, { socket: Socket; protocol: 'mqtts' | 'mqtt' }>();
  /** Every TCP connection, from its accept (before TLS), so shutdown can end them instead of waiting for them to leave. */
  private readonly open = new Set<Socket>();
  /** A closed socket leaves `open` (one listener for every socket, not a closure each; added with on(), as a socket closes once: once() would wrap it in a bound function and a state object per socket). */
  private readonly forgetSocket = forgetFrom(this.open);
  /** mqtt.maxConnections, or less where the process's open-file limit cannot hold it (fd-limit.ts). */
  private connectionCeiling = 0;
  private readonly connectBucket: TokenBucket;
  private readonly meters: DeviceMeters;
  /** Counts each device's behaviour for anomaly detection (null: `anomaly.enabled` is false). */
  private readonly behaviour: BehaviourRecorder | null;
  /** Locked-out addresses already logged, with the end of their lockout (ms epoch): one warning per lockout. */
  private readonly lockoutsLogged = new Map<string, number>();
  /** Every session's credential expiry, under one timer for the node (not a Timeout per session). */
  private readonly expiries = new ExpirySchedule<Session>((session) =>
    this.drop(session, 'credential expired', DISCONNECT_REASON.maximumConnectTime),
  );
  /** Every session's keep-alive, by one sweep for the node (not a Timeout per session). */
  private readonly keepalive = new KeepaliveSweep<Session>(
    () => this.sessions.values(),
    (session) => {
      // What Aedes's own keep-alive timer does (lib/handlers/connect.js).
      this.broker.emit('keepaliveTimeout', session.client);
      session.client.emit('error', new Error('keep alive timeout'));
    },
  );
  private pruner: NodeJS.Timeout | null = null;
  private backends: RedisBackends | null = null;
  private closed = false;

  constructor(
    private readonly platform: Platform,
    private readonly options: MqttOptions,
    private readonly log: Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>,
    /** Failed token sign-ins per source address (the device doors' limiter, `mqtt-token`). */
    private readonly tokenFailures: FailureLimiter,
  ) {
    this.connectBucket = new TokenBucket(options.connectsPerSecond, options.connectsPerSecond * 2, Date.now());
    this.meters = new DeviceMeters(options);
    this.behaviour = platform.config.anomaly.enabled ? platform.assessment.anomaly.recorder : null;
    this.writer = new TelemetryWriter(platform.telemetry.store, { maxBatch: options.maxBatch, maxPending: options.maxPending });
    const sessions = this.sessions;
    this.presence = new PresenceRecorder(platform.telemetry.store, platform.clock, log);
    this.inbox = new DeviceInbox(
      platform,
      this.writer,
      this.stats,
      (deviceId, reply) => this.publishError(deviceId, reply),
      log,
      (message) => this.registerChild(message),
    );
    this.watcher = new CredentialWatcher(
      this.standing(),
      {
        get size() {
          return sessions.size;
        },
        identityOf: (deviceId) => sessions.get(deviceId)?.identity,
        drop: (deviceId, reason) => {
          const session = sessions.get(deviceId);
          if (session) this.drop(session, reason, DISCONNECT_REASON.administrativeAction);
        },
        childChanged: (change) => this.childChanged(change),
      },
      platform.clock,
      (error) => this.log.error({ err: error }, 'credential watcher failed'),
    );
  }

  /** Readiness: the device listener accepts connections and, on a cluster, Redis is reachable. */
  health(): { broker: boolean; redis: boolean | null } {
    return { broker: !this.closed && this.tlsServer?.listening === true, redis: this.backends ? this.backends.reachable() : null };
  }

  get port(): number {
    const address = this.tlsServer?.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  get plainListenerPort(): number | null {
    const address = this.plainServer?.address();
    return typeof address === 'object' && address ? address.port : null;
  }

  /** Device events from this broker's emitter (every node's, through Redis): what live streams follow. */
  deviceEvents(): DeviceEventSource {
    return new BrokerDeviceEvents(this.broker);
  }

  /** Device sessions (authenticated connections) this process holds. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Connected devices on this node. */
  connectedDevices(): string[] {
    return [...this.sessions.keys()];
  }

  /** Swaps the MQTTS listener's server certificate (a renewal): sessions already open keep theirs, new handshakes see this one. */
  setServerCertificate(tls: { cert: string; key: string }): void {
    this.tlsServer?.setSecureContext({ ...SERVER_TLS, cert: tls.cert, key: tls.key, ca: this.clientCa });
  }

  async start(tls: TlsMaterial): Promise<void> {
    const fdLimit = openFileLimit();
    const ceiling = connectionCeiling(this.options.maxConnections, fdLimit);
    this.connectionCeiling = ceiling.max;
    if (ceiling.capped)
      this.log.warn(
        { configured: this.options.maxConnections, held: ceiling.max, openFileLimit: fdLimit },
        'mqtt.maxConnections is above what the open-file limit can hold: this node holds fewer connections (raise the limit, e.g. LimitNOFILE, or run more workers)',
      );
    this.backends = this.options.redisUrl
      ? redisBackends(this.options.redisUrl, (error) =>
          this.log.error({ err: error }, 'Redis unreachable: not ready; routing between nodes waits until it is back'),
        )
      : null;
    dropNumberCache();
    this.broker = await Aedes.createBroker({
      ...(this.backends ?? {}),
      id: `bulwark-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      maxClientsIdLength: 128,
      connectTimeout: this.options.connectTimeoutMs,
      keepaliveLimit: KEEPALIVE_LIMIT_SECONDS,
      drainTimeout: 30_000,
      maxTopicLevels: 16,
      queueLimit: 100,
      concurrency: 1000,
      heartbeatInterval: 60_000,
      // MQTT 5: the size limit is announced (the transport guard enforces it for every version),
      // topic aliases stay off (every PUBLISH names its topic, which the ACL checks), and
      // sessions kept after a disconnect are bounded in time and number.
      maximumPacketSize: this.options.maxPacketBytes,
      topicAliasMaximum: 0,
      sessionExpiryIntervalLimit: SESSION_EXPIRY_LIMIT_SECONDS,
      pendingSessionsLimit: this.options.maxConnections,
      preConnect: (_client, packet, done) => {
        normalizeConnect(packet);
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          () => done(null, true),
          (error: unknown) => done(error as AuthenticateError, false),
        );
      },
      authorizePublish: (client, packet, done) => {
        // Only a will left by a node that stopped comes without a client (the platform's own
        // messages do not pass here): no node holds that session's identity any more, so it is dropped.
        if (!client) {
          this.stats.willsDropped++;
          return done(new Error('will of a session no node holds'));
        }
        this.authorizePublish(client, packet.topic, packet.payload as Buffer, packet.qos).then(
          (route) => {
            packet.retain = false;
            // Acknowledged but refused (a gateway's message for a device that is not its child):
            // routed to a topic no device may subscribe to, so it reaches nobody.
            if (!route) packet.topic = REFUSED_SINK;
            done(null);
          },
          (error: Error) => {
            if (!isStorageUnavailable(error)) return done(error);
            // Not stored, so not acknowledged: the session ends and the device sends the message
            // again on its next connection. MQTT 3.1.1: done(error) closes the connection. MQTT 5:
            // Aedes would answer PUBACK 0x87 (not authorized), which a client takes as final and
            // drops the message, so the session is ended with DISCONNECT 0x89 (server busy) instead.
            this.stats.storageDisconnects++;
            this.log.error({ err: error, deviceId: client.id }, 'mqtt message not stored (storage unavailable): session ended');
            if (client.version === 5)
              disconnect(client, DISCONNECT_REASON.serverBusy, 'storage unavailable: send again after reconnecting');
            else done(error);
          },
        );
      },
      authorizeSubscribe: (client, subscription, done) => {
        const session = this.sessionOf(client);
        if (!session) return done(null, null);
        let decision: AclDecision<string> = authorizeDeviceSubscribe(
          session.identity.deviceId,
          session.identity.status,
          subscription.topic,
        );
        if (!decision.ok && session.gateway) {
          const forChild = authorizeChildSubscribe(session.childStatus, subscription.topic);
          if (forChild.ok) decision = forChild;
        }
        if (!decision.ok) {
          this.stats.aclDenied++;
          session.behaviour.aclDenials++;
          this.warnOnce(
            session,
            'subscribe-acl',
            { filter: subscription.topic.slice(0, 300), reason: decision.reason },
            'mqtt subscribe refused',
          );
          return done(null, null);
        }
        const limit =
          this.options.maxSubscriptionsPerSession + (session.gateway ? SUBSCRIPTIONS_PER_CHILD * session.gateway.children.size : 0);
        if (!roomForSubscription(client, subscription.topic, limit)) {
          this.stats.subscriptionsRefused++;
          this.warnOnce(
            session,
            'subscription-limit',
            { filter: subscription.topic.slice(0, 300), limit },
            'mqtt subscribe refused: subscription limit reached',
          );
          return done(null, null);
        }
        done(null, { ...subscription, qos: Math.min(subscription.qos, 1) as 0 | 1 });
      },
      authorizeForward: (client, packet) => {
        const session = this.sessionOf(client);
        if (!session) return null;
        if (mayDeliver(session.identity.deviceId, session.identity.status, packet.topic)) return packet;
        return session.gateway && mayDeliverToGateway(session.childStatus, packet.topic) ? packet : null;
      },
    });
    this.broker.on('clientReady', (client: Client) => this.onReady(client));
    this.broker.on('clientDisconnect', (client: Client) => this.onDisconnect(client));
    this.broker.on('subscribe', (subscriptions: { topic: string; qos: number }[], client: Client) =>
      this.onSubscribe(subscriptions, client),
    );
    this.broker.on('clientError', (client: Client, error: Error) =>
      this.log.debug({ deviceId: client.id, err: error.message }, 'mqtt client error'),
    );
    this.broker.on('connectionError', (_client: Client, error: Error) => this.log.debug({ err: error.message }, 'mqtt connection error'));

    this.clientCa = tls.clientCa;
    this.tlsServer = createTlsServer(
      {
        ...SERVER_TLS,
        cert: tls.cert,
        key: tls.key,
        ca: tls.clientCa,
        requestCert: true,
        rejectUnauthorized: false,
        handshakeTimeout: this.options.connectTimeoutMs,
      },
      (socket) => this.accept(socket, 'mqtts'),
    );
    this.guardListener(this.tlsServer);
    await listen(this.tlsServer, this.options.port, this.options.host);
    if (this.options.plainPort !== null) {
      this.plainServer = createTcpServer((socket) => this.accept(socket, 'mqtt'));
      this.guardListener(this.plainServer);
      await listen(this.plainServer, this.options.plainPort, this.options.host);
      this.log.warn(
        { port: this.plainListenerPort },
        'plain MQTT listener open: only symmetric-token devices, credentials travel unencrypted',
      );
    }

    this.platform.devices.link.attach(this);
    this.platform.devices.gatewayFeed.on(this.onChildChange);
    this.watcher.start(this.options.watchIntervalMs);
    this.pruner = setInterval(() => this.meters.prune(Date.now(), (deviceId) => this.sessions.has(deviceId)), METER_PRUNE_MS);
    this.pruner.unref();
    this.keepalive.start();
  }

  /** Sends a message to a device (QoS 1); it arrives if the device is subscribed and may receive it. */
  publishToDevice(deviceId: string, suffix: string, payload: unknown, reply?: ReplyTo): Promise<void> {
    // MQTT 5 subscribers get the reply topic and correlation as properties; 3.1.1 encoding leaves them out.
    const properties = reply
      ? { responseTopic: deviceTopic(deviceId, reply.suffix), correlationData: Buffer.from(reply.correlation) }
      : undefined;
    return new Promise((resolve, reject) => {
      this.broker.publish(
        {
          cmd: 'publish',
          topic: deviceTopic(deviceId, suffix),
          payload: Buffer.from(JSON.stringify(payload)),
          qos: 1,
          retain: false,
          dup: false,
          ...(properties ? { properties } : {}),
        },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }

  /**
   * Re-checks the live session of a device now (the in-process shortcut of the watcher): drops it
   * when the device's status changed since it authenticated or its certificate was revoked.
   */
  async recheck(deviceId: string): Promise<void> {
    const session = this.sessions.get(deviceId);
    if (!session) return;
    const lost = await lostStanding(this.standing(), session.identity);
    if (lost) this.drop(session, lost, DISCONNECT_REASON.administrativeAction);
  }

  /** The services that say whether a device still stands as it authenticated. */
  private standing() {
    return { devices: this.platform.devices.service, pki: this.platform.pki, gateways: this.platform.devices.gateways };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.platform.devices.link.detach(this);
    this.platform.devices.gatewayFeed.off(this.onChildChange);
    this.watcher.stop();
    if (this.pruner) clearInterval(this.pruner);
    this.keepalive.stop();
    this.expiries.clear();
    // Every session ends now: recorded offline together below, not one write each as they close.
    this.presence.stop(this.sessions.values());
    const servers = [this.tlsServer, this.plainServer].filter((s): s is TlsServer | TcpServer => s !== null);
    const stopped = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // Devices reconnect elsewhere with backoff; a shutdown does not wait for them to leave, nor for
    // connections still in their TLS handshake or that never started one.
    for (const socket of this.open) socket.destroy();
    await stopped;
    if (this.broker) await withTimeout(new Promise<void>((resolve) => this.broker.close(() => resolve())), 5000);
    // Aedes closes its emitter but not its persistence: the Redis connections would keep the process alive.
    if (this.backends) await this.backends.close();
    await this.writer.drain();
    // The sessions just ended are recorded offline before storage closes.
    if (this.broker) await this.presence.endAll(this.broker.id);
  }

  // --- connections -------------------------------------------------------------------------

  private guardListener(server: TlsServer | TcpServer): void {
    server.maxConnections = this.connectionCeiling;
    // The raw TCP connection, before any TLS work: refuse beyond the connect rate.
    server.on('connection', (socket: Socket) => {
      if (!this.connectBucket.take(Date.now())) {
        this.stats.connectionsRefused++;
        socket.destroy();
        return;
      }
      this.open.add(socket);
      socket.on('close', this.forgetSocket);
    });
    // A handshake that fails or times out (handshakeTimeout) only reports it while a listener is
    // registered: the socket is ours to end.
    server.on('tlsClientError', (_error: Error, socket: Socket) => {
      this.stats.tlsFailures++;
      socket.destroy();
    });
    server.on('error', (error) => this.log.error({ err: error }, 'mqtt listener error'));
  }

  private accept(socket: Socket, protocol: 'mqtts' | 'mqtt'): void {
    socket.setNoDelay(true);
    // A TLS socket is a new object wrapping the accepted one (`_parent`), and ending it ends both:
    // shutdown ends it in place of the accepted one (one entry a connection in the set, not two).
    const accepted = (socket as { _parent?: Socket | null })._parent;
    if (accepted && accepted !== socket) this.open.delete(accepted);
    this.open.add(socket);
    socket.on('close', this.forgetSocket);
    const conn = new ConnectionGuard(socket, this.options, this.frameRefused);
    this.sockets.set(conn, { socket, protocol });
    slimClient(this.broker.handle(conn as unknown as Connection));
  }

  /**
   * The guard refused what a connection sent (guard.ts). A session that breaks a per-session
   * limit is told why (MQTT 5 DISCONNECT with the reason code); anything else is closed.
   */
  private onFrameRefused(conn: ConnectionGuard, error: FrameError): void {
    const { socket } = conn;
    const session = this.sessionOf(clientOf(conn) ?? null);
    const { stat, reasonCode } = FRAME_REFUSALS[error.code];
    this.stats[stat]++;
    this.log.warn(
      { deviceId: session?.identity.deviceId, remote: socket.remoteAddress, reason: error.message },
      'mqtt connection closed by the transport guard',
    );
    if (session && reasonCode !== null) disconnect(session.client, reasonCode, error.message);
    else socket.destroy();
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<void> {
    const transport = this.sockets.get(client.conn);
    if (!transport) throw authError('no transport', RETURN.notAuthorized);
    const peer = peerCertificate(transport);
    if (peer) return this.signIn(client, transport, peer, username, password);
    // A token (or nothing) instead of a certificate: the attempt takes a place in its address's
    // window, kept when it fails (refused credentials, client ID or status) and given back otherwise
    // ("server unavailable": storage out of reach, or the device reconnecting too often).
    const remote = transport.socket.remoteAddress ?? '';
    try {
      await limited(
        this.tokenFailures,
        remote,
        () => this.signIn(client, transport, undefined, username, password),
        (error) => {
          const code = (error as Partial<AuthenticateError>).returnCode;
          return code !== undefined && code !== RETURN.serverUnavailable;
        },
      );
    } catch (error) {
      if (!(error instanceof RateLimitedError)) throw error;
      this.stats.authLockedOut++;
      this.logLockout(remote, error);
      // Not "not authorized": a device behind the same address with a good token retries with backoff.
      throw authError('too many failed sign-ins from this address', RETURN.serverUnavailable);
    }
  }

  /** Warns once per lockout of an address (an attacker must not be able to fill the log). */
  private logLockout(remote: string, error: RateLimitedError): void {
    const now = Date.now();
    const until = this.lockoutsLogged.get(remote);
    if (until !== undefined && until > now) return;
    if (this.lockoutsLogged.size >= LOCKOUTS_REMEMBERED) {
      for (const [address, end] of this.lockoutsLogged) if (end <= now) this.lockoutsLogged.delete(address);
      if (this.lockoutsLogged.size >= LOCKOUTS_REMEMBERED) this.lockoutsLogged.clear();
    }
    const retryAfterSeconds = (error.details as { retryAfterSeconds: number }).retryAfterSeconds;
    this.lockoutsLogged.set(remote, now + retryAfterSeconds * 1000);
    this.log.warn({ remote, retryAfterSeconds }, 'mqtt token sign-ins refused from this address: too many failed');
  }

  private async signIn(
    client: Client,
    transport: { socket: Socket; protocol: 'mqtts' | 'mqtt' },
    peer: X509Certificate | undefined,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    let identity: DeviceIdentity;
    try {
      identity = await this.identify(transport.socket, peer, username, password);
    } catch (error) {
      if (isStorageUnavailable(error)) {
        // The credentials could not be checked (the database is out of reach): not the device's
        // fault, and not final. "Server unavailable" makes it retry with backoff; "not
        // authorized" would make a well-behaved device give up for good.
        this.stats.connectsUnavailable++;
        this.log.error({ err: error, clientId: client.id?.slice(0, 130) }, 'mqtt connect not checked: storage unavailable');
        throw authError('server unavailable', RETURN.serverUnavailable);
      }
      this.stats.authFailures++;
      this.behaviour?.authFailure(username ?? client.id ?? '', transport.socket.remoteAddress ?? '');
      const reason =
        error instanceof DeviceAuthenticationError ? error.reason : error instanceof BulwarkError ? error.code : (error as Error).message;
      this.log.warn({ clientId: client.id?.slice(0, 130), remote: transport.socket.remoteAddress, reason }, 'mqtt authentication refused');
      throw authError(
        'not authorized',
        error instanceof DeviceAuthenticationError && error.reason === 'bad_signature' ? RETURN.badCredentials : RETURN.notAuthorized,
      );
    }
    if (client.id !== identity.deviceId) {
      this.stats.authFailures++;
      this.behaviour?.authFailure(identity.deviceId, transport.socket.remoteAddress ?? '');
      this.log.warn(
        { clientId: client.id?.slice(0, 130), deviceId: identity.deviceId },
        'mqtt client ID does not match the device identity',
      );
      throw authError('client ID must be the device ID', RETURN.identifierRejected);
    }
    if (identity.status !== 'active' && identity.status !== 'quarantined') throw authError('not authorized', RETURN.notAuthorized);
    const admitted = this.meters.admit(identity.deviceId, Date.now());
    if (admitted !== 'admitted') {
      this.stats.deviceConnectsRefused++;
      if (admitted === 'first-refusal')
        this.log.warn(
          { deviceId: identity.deviceId, limit: this.options.deviceConnectsPerMinute },
          'mqtt connect refused: the device reconnects too often',
        );
      throw authError('connecting too often', RETURN.serverUnavailable);
    }
    const previous = this.sessions.get(identity.deviceId);
    if (previous) this.expiries.remove(previous);
    const remote = transport.socket.remoteAddress ?? '';
    const session: Session = {
      client,
      identity: heldIdentity(identity),
      meter: this.meters.meter(identity.deviceId, Date.now()),
      overQuota: false,
      behaviour: this.behaviour ? this.behaviour.attach(identity, remote) : zeroCounts(), // not counted (anomaly.enabled false): written nowhere
      since: this.platform.clock.now(),
      remote,
      protocol: transport.protocol,
      expirySlot: -1,
      connectedSince: null,
      logged: null,
      gateway: null,
      childStatus: NO_CHILDREN,
      heardAt: 0,
      keepaliveTicks: 0,
      refresh: this.keepalive.heardFrom,
    };
    // An active gateway speaks for the children attached to it now (held in memory: the ACL asks on
    // every packet); a quarantined one keeps its own update topics only.
    const children = identity.status === 'active' ? await this.platform.devices.gateways.childrenForSession(identity.deviceId) : null;
    if (children) this.holdChildren(session, children);
    this.expiries.add(session, credentialExpiry(identity) - this.platform.clock.now());
    if (previous && this.behaviour) {
      // The new connection takes over a session this node still holds: the evidence of a shared
      // certificate or of two clients on one client ID (assessment/checks/connections.ts).
      this.behaviour.detach(previous.behaviour);
      if (!previous.client.closed)
        this.behaviour.takeover(
          identity,
          { address: remote, credential: credentialTag(identity) },
          { address: previous.remote, credential: credentialTag(previous.identity), since: previous.since },
        );
    }
    this.sessions.set(identity.deviceId, session);
  }

  private async identify(
    socket: Socket,
    peer: X509Certificate | undefined,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<DeviceIdentity> {
    if (peer) {
      const tlsSocket = socket as TLSSocket;
      if (!tlsSocket.authorized) {
        const code = String(tlsSocket.authorizationError ?? '');
        if (code === 'CERT_NOT_YET_VALID') throw new DeviceAuthenticationError('not_yet_valid');
        if (code === 'CERT_HAS_EXPIRED') throw new DeviceAuthenticationError('expired');
        // Not ours: perhaps from a product's manufacturer CA (just-in-time provisioning, bounded per node).
        return this.platform.devices.jit.authenticate(peer, socket.remoteAddress ?? '');
      }
      return this.platform.devices.identity.fromCertificate(peer);
    }
    if (!username || !password) throw new DeviceAuthenticationError('malformed');
    return this.platform.devices.symmetricKeys.authenticate(username, password.toString('utf8'));
  }

  private sessionOf(client: Client | null): Session | undefined {
    if (!client) return undefined;
    const session = this.sessions.get(client.id);
    return session && session.client === client ? session : undefined;
  }

  private onReady(client: Client): void {
    const session = this.sessionOf(client);
    if (!session) return client.close();
    forgetConnectPacket(client);
    // The CONNACK is out: what the device sent behind its CONNECT is handled now, charged to its rate.
    if (client.conn instanceof ConnectionGuard) {
      client.conn.open(session.meter, refreshKeepaliveOf);
      // The transport was needed to sign the client in, not after.
      this.sockets.delete(client.conn);
    }
    // The session's keep-alive from now on: the node's sweep, not Aedes's timer.
    const interval = takeKeepalive(client, session);
    if (interval > 0) this.keepalive.watch(session, interval);
    this.presence.record(session, this.broker.id, true);
  }

  private onDisconnect(client: Client): void {
    const session = this.sessionOf(client);
    if (!session) return;
    this.behaviour?.detach(session.behaviour);
    this.expiries.remove(session);
    this.sessions.delete(client.id);
    this.presence.record(session, this.broker.id, false);
    if (session.gateway && this.roster.of(session.identity.deviceId) === session.gateway) {
      this.roster.forget(session.identity.deviceId);
      this.log.info(
        {
          deviceId: session.identity.deviceId,
          children: session.gateway.children.size,
          relayedMessages: session.gateway.relayedMessages,
          relayedReadings: session.gateway.relayedReadings,
        },
        'gateway session ended',
      );
    }
  }

  /**
   * Ends a device's session (an MQTT 5 client is sent DISCONNECT with `code` and the reason). Its
   * will is dropped: the platform ended the session, the device did not fail.
   */
  private drop(session: Session, reason: string, code: number): void {
    if (this.sessions.get(session.identity.deviceId) !== session) return;
    this.stats.sessionsDropped++;
    if (discardWill(this.broker, session.client)) this.stats.willsDropped++;
    this.log.info({ deviceId: session.identity.deviceId, reason }, 'mqtt session dropped');
    disconnect(session.client, code, reason);
  }

  /** Logs a refusal once per session and kind (they are all counted in the stats). */
  private warnOnce(session: Session, kind: string, fields: Record<string, unknown>, message: string): void {
    session.logged ??= new Set();
    if (session.logged.has(kind)) return;
    session.logged.add(kind);
    this.log.warn({ deviceId: session.identity.deviceId, ...fields }, message);
  }

  /**
   * A refused publish ends the session. MQTT 3.1.1 clients are closed by Aedes when the publish is
   * refused; an MQTT 5 client first gets its PUBACK 0x87 from Aedes, then DISCONNECT from us.
   */
  private refuse(client: Client, reason: string, code: number): Error {
    if (client.version === 5) setImmediate(() => disconnect(client, code, reason));
    return new Error(reason);
  }

  // --- messages ----------------------------------------------------------------------------

  /** Resolves true to route the message, false when it was acknowledged yet refused; throws to refuse it (the session ends). */
  private async authorizePublish(client: Client, topic: string, payload: Buffer, qos: number): Promise<boolean> {
    const session = this.sessionOf(client);
    if (!session) throw new Error('no session');
    // A closed client publishes only its will: only if the device still stands as it did when it
    // connected (a revocation or status change the watcher has not acted on yet drops it too).
    if (client.closed) {
      const lost =
        this.platform.clock.now() >= credentialExpiry(session.identity)
          ? 'credential expired'
          : await lostStanding(this.standing(), session.identity);
      if (lost) {
        this.stats.willsDropped++;
        throw new Error(`will dropped: ${lost}`);
      }
    }
    const { deviceId, status } = session.identity;
    const own = authorizeDevicePublish(deviceId, status, topic);
    // A gateway's message for one of its children: the child's ACL, session and meters.
    const relayed = !own.ok && session.gateway ? authorizeChildPublish(session.childStatus, topic) : null;
    if (!own.ok && !relayed?.ok) {
      const reason = relayed && !relayed.ok ? relayed.reason : own.ok ? '' : own.reason;
      this.stats.aclDenied++;
      session.behaviour.aclDenials++;
      if (relayed) {
        const other = deviceChannelOwner(topic);
        if (other !== null && other !== deviceId) return this.refuseRelay(session, client, topic, payload, other, reason);
      }
      this.log.warn({ deviceId, topic: topic.slice(0, 300), reason }, 'mqtt publish refused: disconnecting');
      throw this.refuse(client, reason, DISCONNECT_REASON.notAuthorized);
    }
    const child = relayed?.ok ? relayed.value : null;
    session.behaviour.messages++;
    session.behaviour.bytes += payload.length;
    const speaker = child ? session.gateway!.children.get(child.childId)! : session;
    const channel = child ? child.channel : (own as { ok: true; value: DeviceChannel }).value;
    // Every message is charged to the device's message and byte allowances, telemetry also to its
    // reading allowance (so a batch of 1,000 readings costs 1,000): the longest wait applies. A
    // gateway's message for a child is charged to the gateway's session and to the child's meters
    // alike: inventing children multiplies nothing.
    const now = Date.now();
    const readings = channel.kind === 'telemetry' ? this.inbox.readings(speaker, topic, payload, channel.format) : null;
    const count = readings ? readings.length : null;
    let wait = session.meter.chargeMessage(now, payload.length, count);
    if (speaker !== session) {
      wait = Math.max(wait, this.meters.meter(speaker.identity.deviceId, now).chargeMessage(now, payload.length, count));
      this.stats.gatewayRelayed++;
      session.gateway!.relayedMessages++;
      if (readings) session.gateway!.relayedReadings += readings.length;
    }
    if (wait > 0) {
      if (wait > MAX_RATE_DEBT_MS) {
        this.stats.rateDisconnects++;
        throw this.refuse(client, 'publish rate far beyond the limit', DISCONNECT_REASON.rateTooHigh);
      }
      if (qos === 0) {
        // Dropped, yet charged: the socket is not read again until the device is back within
        // its rate, so a flood over TLS costs us its allowed rate, not whatever it can send.
        this.stats.rateLimitedDrops++;
        if (client.conn instanceof ConnectionGuard) client.conn.hold(wait);
        return true;
      }
      // QoS 1: the PUBACK waits, and the socket is not read meanwhile: Aedes handles the packets
      // it has already read side by side, so without the hold every message a device keeps in
      // flight would borrow at once and a well-behaved device flushing its queue would soon be
      // "far beyond" its rate. Held, only what was read before (one 16 KB read) adds to the wait.
      if (client.conn instanceof ConnectionGuard) client.conn.hold(wait);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    await this.inbox.receive({ session: speaker, topic, channel, payload, qos, readings });
    return true;
  }

  /**
   * A gateway's message on a device channel of a device it may not speak for (not its child, or a
   * child whose status closes the channel): charged to the gateway's rates, acknowledged (MQTT 5:
   * PUBACK 0x87), routed to no one, not stored, and answered on `d/<gateway>/errors`. The session stays: a child moved
   * away while the gateway had its messages queued must not turn them into a reconnect loop.
   */
  private refuseRelay(session: Session, client: Client, topic: string, payload: Buffer, other: string, reason: string): false {
    const now = Date.now();
    const wait = session.meter.chargeMessage(now, payload.length, null);
    if (wait > MAX_RATE_DEBT_MS) {
      this.stats.rateDisconnects++;
      throw this.refuse(client, 'publish rate far beyond the limit', DISCONNECT_REASON.rateTooHigh);
    }
    if (wait > 0 && client.conn instanceof ConnectionGuard) client.conn.hold(wait);
    const held = session.childStatus(other) !== undefined;
    this.warnOnce(
      session,
      'relay-acl',
      { topic: topic.slice(0, 300), reason },
      'mqtt publish for a device the gateway may not speak for refused',
    );
    const code = held ? ErrorCodes.gatewayChildNotActive : ErrorCodes.gatewayNotAChild;
    this.publishError(session.identity.deviceId, errorReply(topic, code, held ? reason : `Device ${other} is not a child of this gateway`));
    // MQTT 5 says so in the PUBACK (0x87) and keeps the session; a 3.1.1 PUBACK cannot, so it is a plain one.
    if (client.version === 5) throw new Error(reason);
    return false;
  }

  /** A device that subscribes to its desired state gets it (and its delta) at once: it catches up on connect. */
  private onSubscribe(subscriptions: { topic: string; qos: number }[], client: Client): void {
    const session = this.sessionOf(client);
    if (!session || session.identity.status !== 'active') return;
    // Refused subscriptions are listed too, with QoS 128.
    const granted = subscriptions.filter((s) => s.qos !== 128);
    const speakers = [session.identity];
    if (session.gateway)
      for (const s of granted) {
        const child = session.gateway.children.get(splitDeviceTopic(s.topic)?.deviceId ?? '');
        if (child && child.identity.status === 'active' && !speakers.includes(child.identity)) speakers.push(child.identity);
      }
    for (const identity of speakers) {
      const desired = deviceTopic(identity.deviceId, STATE_DESIRED);
      if (!granted.some((s) => filterMatches(s.topic, desired))) continue;
      this.platform.devices.shadow
        .sync(identity)
        .catch((error: unknown) => this.log.error({ err: error, deviceId: identity.deviceId }, 'shadow sync failed'));
    }
    // A user-data reset sent while the device was offline reaches it when it listens again.
    if (granted.some((s) => filterMatches(s.topic, deviceTopic(session.identity.deviceId, BINDING_RESET))))
      this.platform.binding.service
        .resendReset(session.identity)
        .catch((error: unknown) => this.log.error({ err: error, deviceId: session.identity.deviceId }, 'reset resend failed'));
  }

  // --- gateways (issue 14) ---------------------------------------------------------------------

  /**
   * A gateway's `gateway/register`: the child is registered (or confirmed), held by this session at
   * once, and the answer goes to `d/<gateway>/gateway/result`, refusals with their code.
   */
  private async registerChild({ session, payload }: DeviceMessage): Promise<void> {
    const gatewayId = session.identity.deviceId;
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      body = null;
    }
    const request = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
    const id = typeof request?.id === 'string' && REQUEST_ID.test(request.id) ? request.id : null;
    let result: GatewayResult;
    if (!request || !id) {
      result = {
        id: id ?? '',
        ok: false,
        error: {
          code: ErrorCodes.payloadInvalid,
          message: 'A registration is { "id": "<1-64 of A-Z a-z 0-9 _ ->", "serial": "...", "productId": "..." }',
        },
      };
    } else {
      try {
        const child = await this.platform.devices.gateways.registerByGateway(session.identity, request as { serial: unknown });
        const live = this.sessions.get(gatewayId);
        // Made a gateway after it connected: its session starts holding children now.
        if (live && live.identity.status === 'active')
          this.roster.attach(live.identity, child, live.gateway ?? this.holdChildren(live, []));
        result = { id, ok: true, child };
      } catch (error) {
        if (!(error instanceof BulwarkError)) throw error;
        result = { id, ok: false, error: { code: error.code, message: error.message } };
      }
    }
    await this.publishToDevice(gatewayId, GATEWAY_RESULT, result);
  }

  /** A child was attached, moved, detached or changed status (this node's feed, or another node's through the watcher). */
  private childChanged(change: ChildChange): void {
    const holder = this.roster.holderOf(change.childId);
    const { status } = change;
    if (holder && change.gatewayId !== undefined && holder !== change.gatewayId)
      this.cutChild(holder, change.childId, change.gatewayId ? 'moved to another gateway' : 'detached');
    else if (holder && change.gatewayId === undefined && (status === 'disabled' || status === 'retired'))
      // A poll's reading (another node's change, or this node's seen again): it may have been read just
      // before this node put the child back in service and held it again, so cut it only if it still is.
      void this.cutIfStillOutOfService(holder, change.childId);
    else if (holder) {
      this.roster.setStatus(change.childId, status);
      if (status === 'disabled' || status === 'retired') this.cutChild(holder, change.childId, `child is ${status}`);
    }
    // Attached to (or back in service under) a gateway whose session is on this node: held from now on.
    const gateway = change.gatewayId ? this.sessions.get(change.gatewayId) : undefined;
    if (!gateway || gateway.identity.status !== 'active' || (status !== 'active' && status !== 'quarantined')) return;
    if (gateway.gateway?.children.has(change.childId)) return;
    const state = gateway.gateway ?? this.holdChildren(gateway, []);
    if (change.serial && change.productId)
      this.roster.attach(gateway.identity, { deviceId: change.childId, serial: change.serial, productId: change.productId, status }, state);
    else void this.reloadChildren(gateway);
  }

  /** Cuts a child from `holder` if the database still has it out of service (or gone) now. */
  private async cutIfStillOutOfService(holder: string, childId: string): Promise<void> {
    try {
      const status = await this.platform.devices.service.currentStatus(childId);
      if ((status !== null && status !== 'disabled' && status !== 'retired') || this.roster.holderOf(childId) !== holder) return;
      this.cutChild(holder, childId, `child is ${status ?? 'deleted'}`);
    } catch (error) {
      this.log.error({ err: error, deviceId: holder, childId }, 'child status not checked');
    }
  }

  /** Lets go of a child: its publishes are refused from the next packet, its subscriptions removed, the gateway told. */
  private cutChild(gatewayId: string, childId: string, reason: string): void {
    this.roster.cut(childId);
    this.stats.childrenCut++;
    const session = this.sessions.get(gatewayId);
    if (!session) return;
    const dropped = dropSubscriptions(this.broker, session.client, deviceTopic(childId, ''));
    this.log.info({ deviceId: gatewayId, childId, reason, subscriptionsRemoved: dropped.length }, 'child cut from its gateway');
    this.publishToDevice(gatewayId, GATEWAY_DETACHED, { deviceId: childId, reason }).catch(() => undefined);
  }

  /** Starts holding the session's children (a gateway session): the ACL reads them on every packet. */
  private holdChildren(session: Session, children: ChildView[]): GatewayState {
    const state = this.roster.load(session.identity, children);
    session.gateway = state;
    session.childStatus = (childId) => state.children.get(childId)?.identity.status;
    return state;
  }

  /** Reloads a gateway session's children (a child attached on another node). */
  private async reloadChildren(session: Session): Promise<void> {
    try {
      const children = await this.platform.devices.gateways.childrenForSession(session.identity.deviceId);
      if (this.sessions.get(session.identity.deviceId) !== session || !session.gateway || !children) return;
      for (const child of children)
        if (!session.gateway.children.has(child.deviceId)) this.roster.attach(session.identity, child, session.gateway);
    } catch (error) {
      this.log.error({ err: error, deviceId: session.identity.deviceId }, 'gateway children not reloaded');
    }
  }

  private publishError(deviceId: string, reply: ErrorReply): void {
    this.broker.publish(
      {
        cmd: 'publish',
        topic: deviceTopic(deviceId, ERRORS),
        payload: Buffer.from(JSON.stringify(reply)),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
  }
}

/** How a takeover's evidence names the credential a connection used. */
function credentialTag(identity: DeviceIdentity): string {
  const { credential } = identity;
  switch (credential.type) {
    case 'certificate':
      return `certificate:${credential.certificateSerial}`;
    case 'manufacturer_certificate':
      return `manufacturer_certificate:${credential.fingerprintSha256}`;
    case 'symmetric_key':
      return `symmetric_key:${credential.keyVersion}`;
    case 'via_gateway':
      return `via_gateway:${credential.gatewayId}`;
  }
}

/** A PINGREQ the transport guard answered itself: the keep-alive timer of its client restarts (client-state.ts). */
function refreshKeepaliveOf(conn: ConnectionGuard): void {
  const client = clientOf(conn);
  if (client) refreshKeepalive(client);
}

/** A 'close' listener that removes its socket from `sockets`. */
function forgetFrom(sockets: Set<Socket>): (this: Socket) => void {
  return function forget(this: Socket): void {
    sockets.delete(this);
  };
}

/** Ends a connection: an MQTT 5 client gets DISCONNECT with the reason code and string, a 3.1.1 client the close. */
function disconnect(client: Client, code: number, reason: string): void {
  client.disconnect({ reasonCode: code, properties: { reasonString: reason } });
}

function listen(server: TlsServer | TcpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Resolves when `promise` does or after `ms`, whichever is first (shutdown must not hang on a peer). */
function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
