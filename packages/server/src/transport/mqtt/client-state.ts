/**
 * The parts of an Aedes client (2.0.0-beta.1) the gateway reads or changes beyond Aedes' typed
 * API, in one place: the subscriptions a session holds, the will it would leave, its keep-alive
 * timer, what it watches its connection with, and what its packet parser (mqtt-packet) holds
 * (client-state.test.ts fails if Aedes or mqtt-packet changes them).
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Aedes, Client } from 'aedes';
import { writeToStream } from 'mqtt-packet';
import { eventsInShape } from './emitter-shape.js';

interface ClientInternals {
  /** Granted subscriptions by filter (Aedes adds one when it subscribes, removes it on UNSUBSCRIBE). */
  subscriptions: Record<string, unknown>;
  /** The will Aedes publishes when the connection ends without DISCONNECT (null: none). */
  will: unknown;
  /**
   * Closes the connection silent for 1.5 keep-alives; every packet Aedes reads restarts it
   * (`refresh()`, lib/handlers/index.js). Null until the CONNECT; after takeKeepalive, the session's watch.
   */
  _keepaliveTimer: { refresh(): unknown } | null;
  /** That interval (ms: 1.5 keep-alives and 1), or -1. */
  _keepaliveInterval: number;
  /** Ends Aedes' stream.finished() watch of the connection (lib/client.js), which closes the client when the connection ends. */
  _eos: () => void;
  /** The MQTT 5 topic aliases the device registered (lib/handlers/publish.js): none when the broker grants none. */
  _topicAliases: Map<number, string>;
  /** mqtt-packet's parser of what the connection sends (one per client). */
  _parser: ParserInternals;
  broker: { topicAliasMaximum: number };
}

/** mqtt-packet's Parser (parser.js), as far as it is changed here. */
interface ParserInternals {
  /** The bytes received and not parsed yet: a `bl` BufferListStream (a whole Duplex stream) of which it uses only the buffer list. */
  _list: { length: number };
  /** The names of its four parsing steps, in order (the same array for every parser after slimClient). */
  _states: readonly string[];
  /** The client it parses for (Aedes sets it). */
  client: Client;
  /** The protocol level of the packets after the CONNECT (protocolVersion, bridgeMode): the CONNECT packet itself once parsed. */
  settings: { protocolVersion?: number; bridgeMode?: boolean };
}

interface WillStore {
  persistence: { delWill(client: { id: string; brokerId: string }): Promise<unknown> };
}

const internals = (client: Client) => client as unknown as ClientInternals;

/** The Aedes client a connection was handed to (Aedes sets `conn.client` as it takes the connection). */
export function clientOf(conn: object): Client | undefined {
  return (conn as { client?: Client }).client;
}

/** Restarts the client's keep-alive timer, as Aedes does for every packet it reads (for a PINGREQ the guard answered). */
export function refreshKeepalive(client: Client): void {
  internals(client)._keepaliveTimer?.refresh();
}

/**
 * Takes the keep-alive over from Aedes once the CONNACK is out: its timer (a Timeout, a closure and
 * its context, per client) is cleared, and `watch` is put where Aedes refreshes the timer for every
 * packet it reads; Aedes's clearTimeout() of it when the client closes does nothing. Returns the
 * interval Aedes armed (ms), or 0 if it armed none (the watch is then not taken).
 */
export function takeKeepalive(client: Client, watch: { refresh(): unknown }): number {
  const state = internals(client);
  if (state._keepaliveTimer === null || state._keepaliveInterval <= 0) return 0;
  clearTimeout(state._keepaliveTimer as NodeJS.Timeout);
  state._keepaliveTimer = watch;
  return state._keepaliveInterval;
}

/**
 * Takes from a client just handed its connection (nothing read yet) what an idle one need not hold:
 * - Aedes watches the connection with stream.finished() (eight closures, their context and a
 *   listener on each of four events, per connection) to close the client when the connection ends,
 *   and listens for its 'end' (a bound function, and with finished()'s two a listener array of 19
 *   slots). Aedes also closes it on the connection's 'error'; one 'close' listener shared by every
 *   connection covers the rest (a connection is never half-open: the peer's FIN ends and closes it).
 * - The parser keeps what it has not parsed yet in a `bl` BufferListStream: a Duplex stream (its
 *   two states, listeners and bound callbacks) around the buffer list, of which it uses the list
 *   alone. A plain `bl` BufferList (the same package's, the same methods) takes its place, one that
 *   starts an empty list afresh (below), and the parser's list of its parsing steps is one array for all.
 * - Aedes passes the connection's and the parser's errors on to the client through a function bound
 *   for each (`this.emit.bind(this, 'error')`): one shared function for all connections, one for all
 *   parsers, do the same. The client's and the parser's listeners are kept in an object of fixed
 *   shape, not a dictionary each (emitter-shape.ts). The keep-alive timer is taken over once the CONNACK is out (takeKeepalive).
 * - Without topic aliases granted (topicAliasMaximum 0), Aedes refuses every alias before it reads
 *   the map it gives each client: one empty map, which throws rather than store, serves them all.
 */
export function slimClient(client: Client): void {
  const state = internals(client);
  state._eos();
  state._eos = noop;
  // One at a time: removeAllListeners would take the connection's listeners out of their shape.
  for (const listener of client.conn.listeners('end')) client.conn.removeListener('end', listener as () => void);
  client.conn.on('close', closeClientOfConnection);
  const parser = state._parser;
  relayErrorsThrough(client.conn, relayConnectionError);
  relayErrorsThrough(parser as unknown as EventEmitter, relayParserError);
  eventsInShape(client as unknown as EventEmitter);
  eventsInShape(parser as unknown as EventEmitter);
  if (parser._list.length === 0) parser._list = new BufferList();
  parser._states = sharedStates(parser._states);
  if (state.broker.topicAliasMaximum === 0 && state._topicAliases.size === 0) state._topicAliases = NO_TOPIC_ALIASES;
}

/**
 * Called once the CONNECT is accepted: the parser keeps the whole CONNECT packet as its settings
 * (client ID, credentials, will: the password a view of the TLS read it came in) to know the
 * protocol level of the packets after it. An object with that level alone, shared by every client
 * of that level, takes its place.
 */
export function forgetConnectPacket(client: Client): void {
  const parser = internals(client)._parser;
  const { protocolVersion, bridgeMode } = parser.settings;
  const shared = protocolVersion === undefined || bridgeMode ? undefined : PARSER_SETTINGS.get(protocolVersion);
  if (shared) parser.settings = shared;
}

/**
 * mqtt-packet's writer (the one Aedes writes every packet with) fills, on the first packet it
 * writes, a cache of 65,536 two-byte Buffers, one per message ID or length it might write: some
 * 6 MB of heap per process, made at a node's first CONNACK. Without it, the writer makes the two
 * bytes each time it writes one (a QoS 1 PUBLISH or PUBACK, a SUBACK). Called as the broker starts.
 */
export function dropNumberCache(): void {
  writeToStream.cacheNumbers = false;
}

interface BufferListInternals {
  length: number;
  _bufs: Buffer[];
  append(buf: Buffer): BufferListInternals;
}

/** `bl`'s BufferList, from the copy of `bl` the parser Aedes uses loads (Aedes → mqtt-packet → bl). */
const BufferList = loadBufferList();

function loadBufferList(): new () => BufferListInternals {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const fromParser = createRequire(fromAedes.resolve('mqtt-packet'));
  const Base = (fromParser('bl') as { BufferList: new () => BufferListInternals }).BufferList;
  /**
   * The parser appends each read and consumes each packet: a list that is empty when a read arrives
   * (nearly always) starts a one-element array, instead of pushing into the array it had, which
   * V8 grew to 17 slots at its first push and keeps at that size, 152 bytes per idle connection.
   */
  return class ShortBufferList extends Base {
    override append(buf: Buffer): BufferListInternals {
      if (this._bufs.length > 0 || !Buffer.isBuffer(buf)) return super.append(buf);
      this._bufs = [buf];
      this.length = buf.length;
      return this;
    }
  };
}

const PARSER_SETTINGS = new Map([3, 4, 5].map((level) => [level, Object.freeze({ protocolVersion: level })]));

let parserStates: readonly string[] | null = null;

/** The first parser's list of parsing steps, frozen, for every parser whose list is the same. */
function sharedStates(states: readonly string[]): readonly string[] {
  parserStates ??= Object.freeze([...states]);
  const same = states.length === parserStates.length && states.every((name, i) => name === parserStates![i]);
  return same ? parserStates : states;
}

/** A client's topic-alias map when the broker grants none: empty for good. */
class NoTopicAliases extends Map<number, string> {
  override set(): this {
    throw new Error('no topic alias is granted');
  }
}

const NO_TOPIC_ALIASES = new NoTopicAliases();

function closeClientOfConnection(this: object): void {
  clientOf(this)?.close();
}

/** Replaces the function Aedes bound to pass `emitter`'s errors to the client ("bound emit") with `relay`. */
function relayErrorsThrough(emitter: EventEmitter, relay: (this: never, error: Error) => void): void {
  const bound = emitter.listeners('error').filter((listener) => listener.name === 'bound emit');
  if (bound.length !== 1) return;
  emitter.removeListener('error', bound[0] as (error: Error) => void);
  emitter.on('error', relay);
}

function relayConnectionError(this: object, error: Error): void {
  clientOf(this)?.emit('error', error);
}

function relayParserError(this: ParserInternals, error: Error): void {
  this.client.emit('error', error);
}

function noop(): void {}

/** Whether the session may take `filter` without going over `max` subscriptions (re-subscribing to a filter it holds is free). */
export function roomForSubscription(client: Client, filter: string, max: number): boolean {
  const subscriptions = internals(client).subscriptions;
  return Object.hasOwn(subscriptions, filter) || Object.keys(subscriptions).length < max;
}

/** Drops the will the client would leave, and the copy Aedes stored; false if it had none. */
export function discardWill(broker: Aedes, client: Client): boolean {
  const state = internals(client);
  if (!state.will) return false;
  state.will = null;
  (broker as unknown as WillStore).persistence.delWill({ id: client.id, brokerId: broker.id }).catch(() => undefined);
  return true;
}

interface Unsubscriber {
  unsubscribe(packet: { unsubscriptions: string[] }, done: (error?: Error) => void): void;
}

interface SubscriptionStore {
  persistence: { removeSubscriptions(client: Client, filters: string[]): Promise<unknown> };
}

/**
 * Removes the session's subscriptions whose filter starts with `prefix` (a child cut from its
 * gateway), from the live client and from the stored session, as an UNSUBSCRIBE would; returns them.
 */
export function dropSubscriptions(broker: Aedes, client: Client, prefix: string): string[] {
  const filters = Object.keys(internals(client).subscriptions).filter((f) => f.startsWith(prefix));
  if (filters.length === 0) return filters;
  if (!client.clean) (broker as unknown as SubscriptionStore).persistence.removeSubscriptions(client, filters).catch(() => undefined);
  (client as unknown as Unsubscriber).unsubscribe({ unsubscriptions: filters }, () => undefined);
  return filters;
}
