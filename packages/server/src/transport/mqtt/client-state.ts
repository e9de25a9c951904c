/**
 * The parts of an Aedes client (2.0.0-beta.1) the gateway reads or changes beyond Aedes' typed
 * API, in one place: the subscriptions a session holds, the will it would leave, its keep-alive
 * timer, what it watches its connection with, and what its packet parser (mqtt-packet) holds
 * (client-state.test.ts fails if Aedes or mqtt-packet changes them).
 */
import { createRequire } from 'node:module';
import type { Aedes, Client } from 'aedes';
import { writeToStream } from 'mqtt-packet';

interface ClientInternals {
  /** Granted subscriptions by filter (Aedes adds one when it subscribes, removes it on UNSUBSCRIBE). */
  subscriptions: Record<string, unknown>;
  /** The will Aedes publishes when the connection ends without DISCONNECT (null: none). */
  will: unknown;
  /** Closes the connection silent for 1.5 keep-alives; every packet Aedes reads restarts it (lib/handlers/index.js). Null until the CONNECT. */
  _keepaliveTimer: NodeJS.Timeout | null;
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
 * Takes from a client just handed its connection (nothing read yet) what an idle one need not hold:
 * - Aedes watches the connection with stream.finished() (eight closures, their context and a
 *   listener on each of four events, per connection) to close the client when the connection ends.
 *   Aedes also closes it on the connection's 'end' and 'error'; one 'close' listener shared by every
 *   connection covers the rest.
 * - The parser keeps what it has not parsed yet in a `bl` BufferListStream: a Duplex stream (its
 *   two states, listeners and bound callbacks) around the buffer list, of which it uses the list
 *   alone. A plain `bl` BufferList (the same package's, the same methods) takes its place, and the
 *   parser's list of its parsing steps is one array for all.
 * - Without topic aliases granted (topicAliasMaximum 0), Aedes refuses every alias before it reads
 *   the map it gives each client: one empty map, which throws rather than store, serves them all.
 */
export function slimClient(client: Client): void {
  const state = internals(client);
  state._eos();
  state._eos = noop;
  client.conn.on('close', closeClientOfConnection);
  const parser = state._parser;
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

/** `bl`'s BufferList, from the copy of `bl` the parser Aedes uses loads (Aedes → mqtt-packet → bl). */
const BufferList = loadBufferList();

function loadBufferList(): new () => { length: number } {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const fromParser = createRequire(fromAedes.resolve('mqtt-packet'));
  return (fromParser('bl') as { BufferList: new () => { length: number } }).BufferList;
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
