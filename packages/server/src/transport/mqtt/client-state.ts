/**
 * The parts of an Aedes client (2.0.0-beta.1) the gateway reads or changes beyond Aedes' typed
 * API, in one place: the subscriptions a session holds, the will it would leave, its keep-alive
 * timer, and what it watches its connection with (client-state.test.ts fails if Aedes changes them).
 */
import type { Aedes, Client } from 'aedes';

interface ClientInternals {
  /** Granted subscriptions by filter (Aedes adds one when it subscribes, removes it on UNSUBSCRIBE). */
  subscriptions: Record<string, unknown>;
  /** The will Aedes publishes when the connection ends without DISCONNECT (null: none). */
  will: unknown;
  /** Closes the connection silent for 1.5 keep-alives; every packet Aedes reads restarts it (lib/handlers/index.js). Null until the CONNECT. */
  _keepaliveTimer: NodeJS.Timeout | null;
  /** Ends Aedes' stream.finished() watch of the connection (lib/client.js), which closes the client when the connection ends. */
  _eos: () => void;
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
 * Takes from a client just handed its connection what an idle one need not hold: Aedes watches the
 * connection with stream.finished() (eight closures, their context and a listener on each of four
 * events, per connection) to close the client when the connection ends. Aedes also closes it on
 * the connection's 'end' and 'error'; one 'close' listener shared by every connection covers the rest.
 */
export function slimClient(client: Client): void {
  const state = internals(client);
  state._eos();
  state._eos = noop;
  client.conn.on('close', closeClientOfConnection);
}

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
