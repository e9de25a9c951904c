/**
 * The parts of an Aedes client (2.0.0-beta.1) the gateway reads or changes beyond Aedes' typed
 * API, in one place: the subscriptions a session holds.
 */
import type { Client } from 'aedes';

interface ClientInternals {
  /** Granted subscriptions by filter (Aedes adds one when it subscribes, removes it on UNSUBSCRIBE). */
  subscriptions: Record<string, unknown>;
}

const internals = (client: Client) => client as unknown as ClientInternals;

/** Whether the session may take `filter` without going over `max` subscriptions (re-subscribing to a filter it holds is free). */
export function roomForSubscription(client: Client, filter: string, max: number): boolean {
  const subscriptions = internals(client).subscriptions;
  return Object.hasOwn(subscriptions, filter) || Object.keys(subscriptions).length < max;
}
