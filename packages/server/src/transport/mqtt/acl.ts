/**
 * The identity-bound ACL over the device topic scheme (@bulwark/protocol, docs/protocol.md). Every topic a device
 * may touch starts with `d/<its own device ID>/`; what lies below is a fixed list, so a device
 * can neither publish as nor listen to another device, nor reach `$SYS`, shared subscriptions
 * or anything the platform did not define. A quarantined device keeps its update topics only,
 * so it can still be repaired. A gateway (issue 14) may also act on the topics of the children
 * attached to it, each by that child's status, and on no other device's. Pure functions: the
 * broker calls them on every packet.
 */
import { deviceTopic, parseDeviceChannel, splitDeviceTopic, TELEMETRY, topicShapeProblem, type DeviceChannel } from '@bulwark/protocol';
import type { DeviceStatus } from '../../devices/model.js';

export type AclDecision<T> = { ok: true; value: T } | { ok: false; reason: string };

const deny = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

const TELEMETRY_JSON: AclDecision<DeviceChannel> = { ok: true, value: { kind: 'telemetry', format: 'json' } };

/** What a device may publish: its own channels only; a quarantined device its update channel only. */
export function authorizeDevicePublish(deviceId: string, status: DeviceStatus, topic: string): AclDecision<DeviceChannel> {
  // The message almost every packet is: an active device's own telemetry topic, exactly.
  if (status === 'active' && topic === deviceTopic(deviceId, TELEMETRY)) return TELEMETRY_JSON;
  const bad = topicShapeProblem(topic);
  if (bad) return deny(bad);
  const prefix = deviceTopic(deviceId, '');
  if (!topic.startsWith(prefix)) return deny('topic outside the device’s own prefix');
  const channel = parseDeviceChannel(topic.slice(prefix.length));
  if (!channel) return deny('not a device channel');
  if (status === 'quarantined' && channel.kind !== 'update') return deny('device is quarantined: only its update topics are open');
  if (status !== 'active' && status !== 'quarantined') return deny(`device is ${status}`);
  return { ok: true, value: channel };
}

/**
 * What a device may subscribe to: filters under its own prefix with no wildcard in the prefix
 * itself (`d/+/…` and `#` reach other devices), no shared subscriptions, no `$SYS`.
 */
export function authorizeDeviceSubscribe(deviceId: string, status: DeviceStatus, filter: string): AclDecision<string> {
  const bad = topicShapeProblem(filter);
  if (bad) return deny(bad);
  if (filter.startsWith('$')) return deny('$SYS and shared subscriptions are not open to devices');
  const prefix = deviceTopic(deviceId, '');
  if (!filter.startsWith(prefix)) return deny('filter outside the device’s own prefix');
  const rest = filter.slice(prefix.length);
  if (rest.length === 0) return deny('empty filter below the prefix');
  const levels = rest.split('/');
  // `#` only as the last level and `+` only as a whole level (MQTT 4.7.1), checked here too so a
  // malformed filter never reaches the matcher.
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return deny('malformed multi-level wildcard');
    if (level.includes('+') && level !== '+') return deny('malformed single-level wildcard');
  }
  if (status === 'quarantined' && levels[0] !== 'updates') return deny('device is quarantined: only its update topics are open');
  if (status !== 'active' && status !== 'quarantined') return deny(`device is ${status}`);
  return { ok: true, value: filter };
}

/** Whether a message the platform routes may reach a device in its current status. */
export function mayDeliver(deviceId: string, status: DeviceStatus, topic: string): boolean {
  const prefix = deviceTopic(deviceId, '');
  if (!topic.startsWith(prefix)) return false;
  if (status === 'active') return true;
  return status === 'quarantined' && topic.startsWith(`${prefix}updates/`);
}

/** A gateway session's children: the status of each (undefined: not a child of this gateway). */
export type ChildStatus = (childId: string) => DeviceStatus | undefined;

/** What a gateway may publish for a child: the child's own channels, by the child's status; never a gateway request. */
export function authorizeChildPublish(children: ChildStatus, topic: string): AclDecision<{ childId: string; channel: DeviceChannel }> {
  const split = splitDeviceTopic(topic);
  const status = split ? children(split.deviceId) : undefined;
  if (!split || status === undefined) return deny('topic of a device that is not a child of this gateway');
  const decision = authorizeDevicePublish(split.deviceId, status, topic);
  if (!decision.ok) return decision;
  if (decision.value.kind === 'gateway_register') return deny('a child cannot register children');
  return { ok: true, value: { childId: split.deviceId, channel: decision.value } };
}

/** What a gateway may subscribe to for a child: filters under the child's own prefix, by the child's status. */
export function authorizeChildSubscribe(children: ChildStatus, filter: string): AclDecision<string> {
  const split = splitDeviceTopic(filter);
  const status = split ? children(split.deviceId) : undefined;
  if (!split || status === undefined) return deny('filter of a device that is not a child of this gateway');
  return authorizeDeviceSubscribe(split.deviceId, status, filter);
}

/** The device a topic names when it is one of the device channels (`d/<id>/telemetry`...), else null. */
export function deviceChannelOwner(topic: string): string | null {
  const split = splitDeviceTopic(topic);
  return split && parseDeviceChannel(split.suffix) ? split.deviceId : null;
}

/** Whether a message may reach a gateway for one of its children (the child's status decides, as for the device itself). */
export function mayDeliverToGateway(children: ChildStatus, topic: string): boolean {
  const split = splitDeviceTopic(topic);
  const status = split ? children(split.deviceId) : undefined;
  return status !== undefined && mayDeliver(split!.deviceId, status, topic);
}
