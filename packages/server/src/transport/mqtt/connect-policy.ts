/**
 * What the broker changes in a CONNECT before Aedes reads it (its preConnect hook), where Aedes
 * would otherwise answer something a client cannot act on:
 *   - keep-alive: at most KEEPALIVE_LIMIT_SECONDS, and never 0 (a dead device must not hold a
 *     session for ever). MQTT 5 clients asking for 0 or more get a CONNACK with Server Keep Alive
 *     set to the limit, which they must use (Aedes does this). MQTT 3.1.1 has no way to say so and
 *     no return code for it (Aedes answers 6, a reserved value), so their keep-alive is taken as
 *     the limit: the broker closes a connection silent for 1.5 times it.
 *   - the will's QoS: the broker supports QoS 0 and 1 (guard.ts); a will asking for QoS 2 is
 *     published with QoS 1.
 */
import type { ConnectPacket } from 'aedes';

export const KEEPALIVE_LIMIT_SECONDS = 1200;

export function normalizeConnect(packet: ConnectPacket): void {
  if (packet.protocolVersion !== 5 && (!packet.keepalive || packet.keepalive > KEEPALIVE_LIMIT_SECONDS))
    packet.keepalive = KEEPALIVE_LIMIT_SECONDS;
  if (packet.will?.qos === 2) packet.will.qos = 1;
}
