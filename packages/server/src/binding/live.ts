/**
 * Live state for companion apps: each open stream follows one device's telemetry and reported
 * state, fed by a DeviceEventSource the runner connects (the MQTT broker's emitter, shared
 * through Redis across nodes, so a stream on any node sees a device connected to any other).
 * One source subscription per watched device on this node; each message is parsed once and
 * written to every stream of its device. A binding change anywhere (revoke, leave, unbind,
 * transfer, reset) is announced through the same source; every stream of that device re-checks
 * its consumer's standing and ends at once when it is gone. A consumer's sign-out anywhere (logout,
 * password change, sessions revoked: what also ends their app grants) ends all their streams on
 * every node; a client whose credential still holds opens its stream again. Streams are bounded per
 * consumer and in lifetime (promise 9).
 */
import { ErrorCodes, type PayloadFormat } from '@bulwark/protocol';
import type { Actor } from '../accounts/roles.js';
import type { Clock } from '../clock.js';
import { BulwarkError, DeviceMessageRefusal } from '../errors.js';
import { keepAllowed, type CollectionFilter } from '../telemetry/collection.js';
import { parseTelemetry, type Reading } from '../telemetry/payloads.js';
import type { BindingStore } from './store.js';

/** What a device event source delivers: raw device messages and binding-change notices. */
export type DeviceEvent =
  { kind: 'telemetry'; format: PayloadFormat; payload: Buffer } | { kind: 'reported'; payload: Buffer } | { kind: 'binding' };

/**
 * The port the runner connects: the broker's emitter. `watch` calls the listener with each event
 * of the device until the returned function is called; `announce` tells every node's watchers of
 * the device that its binding changed; `announceSignOut` tells every node (`onSignOut`) that a
 * consumer signed out.
 */
export interface DeviceEventSource {
  watch(deviceId: string, listener: (event: DeviceEvent) => void): () => void;
  announce(deviceId: string): void;
  announceSignOut(userId: string): void;
  onSignOut(listener: (userId: string) => void): void;
}

/** Where a stream's events go (the route writes them as server-sent events). */
export interface LiveSink {
  send(event: 'telemetry' | 'reported' | 'end', data: unknown): void;
  close(): void;
}

export interface LiveLimits {
  maxStreamsPerConsumer: number;
  maxStreamSeconds: number;
}

interface Stream {
  userId: string;
  organizationId: string;
  deviceId: string;
  sink: LiveSink;
  timer: NodeJS.Timeout;
  closed: boolean;
}

interface Watched {
  streams: Set<Stream>;
  unwatch: () => void;
}

/** Too many live streams open for this consumer. */
export class LiveStreamLimitError extends BulwarkError {
  constructor(limit: number) {
    super(ErrorCodes.liveStreamLimit, `At most ${limit} live streams may be open at once; close one first`, 429, { limit });
  }
}

/** Without a broker on this node: only this node's binding notices, no device events. */
class LocalOnly implements DeviceEventSource {
  private readonly listeners = new Map<string, Set<(event: DeviceEvent) => void>>();
  watch(deviceId: string, listener: (event: DeviceEvent) => void): () => void {
    const set = this.listeners.get(deviceId) ?? new Set();
    this.listeners.set(deviceId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(deviceId);
    };
  }
  announce(deviceId: string): void {
    for (const listener of this.listeners.get(deviceId) ?? []) listener({ kind: 'binding' });
  }
  private readonly signOutListeners: ((userId: string) => void)[] = [];
  announceSignOut(userId: string): void {
    for (const listener of this.signOutListeners) listener(userId);
  }
  onSignOut(listener: (userId: string) => void): void {
    this.signOutListeners.push(listener);
  }
}

export class LiveHub {
  private source: DeviceEventSource = new LocalOnly();
  private readonly devices = new Map<string, Watched>();
  private readonly perUser = new Map<string, Set<Stream>>();
  private count = 0;

  constructor(
    private readonly store: BindingStore,
    private readonly clock: Clock,
    /** What the device's product declaration and its owner's consents let through: the stream shows no more than is stored. */
    private readonly collection: CollectionFilter,
    private readonly limits: LiveLimits,
  ) {
    this.source.onSignOut((userId) => this.endStreamsOf(userId));
  }

  /** What goes wrong delivering events (a failed standing check); the runner points it at its log. */
  private onError: (error: unknown) => void = (error) => console.error('live streams:', error);

  /**
   * The runner connects the broker's emitter once it runs (streams opened later follow devices
   * through it) and its log.
   */
  connect(source: DeviceEventSource, onError: (error: unknown) => void): void {
    this.source = source;
    this.onError = onError;
    source.onSignOut((userId) => this.endStreamsOf(userId));
  }

  /** The consumer signed out (or every session of theirs ended): their streams end here and on every other node. */
  userSignedOut(userId: string): void {
    this.endStreamsOf(userId);
    this.source.announceSignOut(userId);
  }

  private endStreamsOf(userId: string): void {
    for (const stream of [...(this.perUser.get(userId) ?? [])]) this.end(stream, 'signed_out');
  }

  /** Open streams on this node (metrics, tests). */
  get size(): number {
    return this.count;
  }

  /** Opens a stream of the device's events to `sink`; the caller checked the actor may view the device. */
  open(actor: Actor, deviceId: string, sink: LiveSink): () => void {
    const held = this.perUser.get(actor.userId) ?? new Set<Stream>();
    if (held.size >= this.limits.maxStreamsPerConsumer) throw new LiveStreamLimitError(this.limits.maxStreamsPerConsumer);
    this.perUser.set(actor.userId, held);
    this.count++;
    const stream: Stream = {
      userId: actor.userId,
      organizationId: actor.organizationId,
      deviceId,
      sink,
      timer: setTimeout(() => this.end(stream, 'expired'), this.limits.maxStreamSeconds * 1000),
      closed: false,
    };
    stream.timer.unref();
    held.add(stream);
    let watched = this.devices.get(deviceId);
    if (!watched) {
      const streams = new Set<Stream>();
      watched = { streams, unwatch: () => undefined };
      this.devices.set(deviceId, watched);
      watched.unwatch = this.source.watch(deviceId, (event) => this.deliver(deviceId, streams, event));
    }
    watched.streams.add(stream);
    return () => this.end(stream, null);
  }

  /** A binding of the device changed here: this node's streams re-check now, the other nodes' through the source. */
  bindingChanged(deviceId: string): void {
    // A new or departed owner brings or takes consents: the ingest path looks the device up again.
    this.collection.forget(deviceId);
    const watched = this.devices.get(deviceId);
    if (watched) this.recheck(watched.streams);
    this.source.announce(deviceId);
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const watched of [...this.devices.values()]) for (const stream of [...watched.streams]) this.end(stream, 'shutdown');
  }

  private deliver(deviceId: string, streams: Set<Stream>, event: DeviceEvent): void {
    if (event.kind === 'binding') return this.recheck(streams);
    let readings: Reading[] | null = null;
    let data: unknown;
    try {
      if (event.kind === 'telemetry') readings = parseTelemetry(event.payload, this.clock.now(), event.format);
      else {
        const body = JSON.parse(event.payload.toString('utf8')) as { state?: unknown };
        if (!body || typeof body !== 'object' || !body.state || typeof body.state !== 'object') return;
        data = { state: body.state };
      }
    } catch (error) {
      // A malformed device message was refused by the platform already; the streams just skip it.
      if (!(error instanceof DeviceMessageRefusal) && !(error instanceof SyntaxError)) this.onError(error);
      return;
    }
    if (!readings) return this.send(streams, 'reported', data);
    const all = readings;
    const send = (allowed: ReadonlySet<string> | null) => {
      const kept = keepAllowed(all, allowed);
      if (kept.length > 0)
        this.send(streams, 'telemetry', { readings: kept.map((r) => ({ ts: new Date(r.ts).toISOString(), values: r.values })) });
    };
    const known = this.collection.known(deviceId);
    if (known !== undefined) return send(known);
    const first = streams.values().next().value;
    if (!first) return;
    this.collection.allowed(deviceId, first.organizationId).then(send, (error: unknown) => this.onError(error));
  }

  private send(streams: Set<Stream>, name: 'telemetry' | 'reported', data: unknown): void {
    for (const stream of streams) if (!stream.closed) stream.sink.send(name, data);
  }

  private recheck(streams: Set<Stream>): void {
    for (const stream of streams) {
      // Any standing lets a consumer watch; none left (revoked, left, unbound, transferred): the stream ends.
      this.store.member(stream.deviceId, stream.userId).then(
        (member) => member || this.end(stream, 'revoked'),
        (error: unknown) => this.onError(error),
      );
    }
  }

  private end(stream: Stream, reason: 'revoked' | 'expired' | 'shutdown' | 'signed_out' | null): void {
    if (stream.closed) return;
    stream.closed = true;
    this.count--;
    clearTimeout(stream.timer);
    const watched = this.devices.get(stream.deviceId);
    if (watched) {
      watched.streams.delete(stream);
      if (watched.streams.size === 0) {
        this.devices.delete(stream.deviceId);
        watched.unwatch();
      }
    }
    const held = this.perUser.get(stream.userId);
    held?.delete(stream);
    if (held?.size === 0) this.perUser.delete(stream.userId);
    if (reason) {
      try {
        stream.sink.send('end', { reason });
      } finally {
        stream.sink.close();
      }
    }
  }
}
