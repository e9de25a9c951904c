/**
 * The device topic scheme and the identity-bound ACL (docs/protocol.md). Every topic a device
 * may touch starts with `d/<its own device ID>/`; what lies below is a fixed list, so a device
 * can neither publish as nor listen to another device, nor reach `$SYS`, shared subscriptions
 * or anything the platform did not define. A quarantined device keeps its update topics only,
 * so it can still be repaired. Pure functions: the broker calls them on every packet.
 */
import { UPDATE_TOPICS } from '@bulwark/protocol';
import type { DeviceStatus } from '../../devices/model.js';
import type { PayloadFormat } from '../../telemetry/payloads.js';

export const TOPIC_PREFIX = 'd';
export const MAX_TOPIC_LENGTH = 256;
const MAX_LEVELS = 8;
const COMMAND_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Topics a device publishes to, below `d/<id>/`. */
export type DeviceChannel =
  | { kind: 'telemetry'; format: PayloadFormat }
  | { kind: 'state_reported' }
  | { kind: 'state_get' }
  | { kind: 'command_result'; commandId: string }
  | { kind: 'presence' }
  | { kind: 'update'; name: string };

/** Topics the platform publishes to a device, below `d/<id>/` (documented for subscribers). */
export const SERVER_TOPICS = ['state/desired', 'state/delta', 'commands/+', 'errors', 'updates/+'] as const;
/** Update topics only the platform publishes on: a device publishing there would talk to itself. */
const SERVER_UPDATE_TOPICS = new Set<string>([UPDATE_TOPICS.available]);

export function deviceTopic(deviceId: string, suffix: string): string {
  return `${TOPIC_PREFIX}/${deviceId}/${suffix}`;
}

export type AclDecision<T> = { ok: true; value: T } | { ok: false; reason: string };

const deny = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** Refuses topics that are too long, too deep, or carry characters MQTT forbids in names. */
function checkShape(topic: string): string | null {
  if (topic.length === 0) return 'empty topic';
  if (Buffer.byteLength(topic) > MAX_TOPIC_LENGTH) return `topic longer than ${MAX_TOPIC_LENGTH} bytes`;
  if (topic.includes('\u0000')) return 'topic contains NUL';
  if (topic.split('/').length > MAX_LEVELS) return `topic deeper than ${MAX_LEVELS} levels`;
  return null;
}

const TELEMETRY: AclDecision<DeviceChannel> = { ok: true, value: { kind: 'telemetry', format: 'json' } };

/** What a device may publish: its own channels only; a quarantined device its update channel only. */
export function authorizeDevicePublish(deviceId: string, status: DeviceStatus, topic: string): AclDecision<DeviceChannel> {
  // The message almost every packet is: an active device's own telemetry topic, exactly.
  if (status === 'active' && topic === `${TOPIC_PREFIX}/${deviceId}/telemetry`) return TELEMETRY;
  const bad = checkShape(topic);
  if (bad) return deny(bad);
  const prefix = `${TOPIC_PREFIX}/${deviceId}/`;
  if (!topic.startsWith(prefix)) return deny('topic outside the device’s own prefix');
  const rest = topic.slice(prefix.length).split('/');
  let channel: DeviceChannel | null = null;
  if (rest.length === 1 && rest[0] === 'telemetry') channel = { kind: 'telemetry', format: 'json' };
  else if (rest.length === 2 && rest[0] === 'telemetry' && rest[1] === 'cbor') channel = { kind: 'telemetry', format: 'cbor' };
  else if (rest.length === 2 && rest[0] === 'state' && rest[1] === 'reported') channel = { kind: 'state_reported' };
  else if (rest.length === 2 && rest[0] === 'state' && rest[1] === 'get') channel = { kind: 'state_get' };
  else if (rest.length === 3 && rest[0] === 'commands' && COMMAND_ID.test(rest[1]!) && rest[2] === 'result')
    channel = { kind: 'command_result', commandId: rest[1]! };
  else if (rest.length === 1 && rest[0] === 'presence') channel = { kind: 'presence' };
  else if (rest.length === 2 && rest[0] === 'updates' && /^[a-z-]{1,32}$/.test(rest[1]!) && !SERVER_UPDATE_TOPICS.has(`updates/${rest[1]}`))
    channel = { kind: 'update', name: rest[1]! };
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
  const bad = checkShape(filter);
  if (bad) return deny(bad);
  if (filter.startsWith('$')) return deny('$SYS and shared subscriptions are not open to devices');
  const prefix = `${TOPIC_PREFIX}/${deviceId}/`;
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
  const prefix = `${TOPIC_PREFIX}/${deviceId}/`;
  if (!topic.startsWith(prefix)) return false;
  if (status === 'active') return true;
  return status === 'quarantined' && topic.startsWith(`${prefix}updates/`);
}

/** Whether an MQTT topic filter (with + and #) matches a topic name. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
