/**
 * The device topic scheme (docs/protocol.md §2) and the messages carried on it, shared by the
 * broker and the device SDK: everything a device touches lies below `d/<deviceId>/`, and what
 * lies below is a fixed list of channels, built and parsed here only.
 */

export const TOPIC_PREFIX = 'd';
/** Longest topic, in UTF-8 bytes. */
export const MAX_TOPIC_LENGTH = 256;
/** Deepest topic, in levels. */
export const MAX_TOPIC_LEVELS = 8;
/** Device IDs as certificates carry them (pki.device_id_invalid otherwise). */
export const DEVICE_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** Command IDs as the protocol allows them. */
export const COMMAND_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Names of the channels below `updates/`. */
export const UPDATE_CHANNEL = /^[a-z-]{1,32}$/;

/** The topic `d/<deviceId>/<suffix>`. */
export const deviceTopic = (deviceId: string, suffix: string): string => `${TOPIC_PREFIX}/${deviceId}/${suffix}`;

/** Channel suffixes below `d/<deviceId>/`. */
export const TELEMETRY = 'telemetry';
export const TELEMETRY_CBOR = 'telemetry/cbor';
export const ERRORS = 'errors';
export const PRESENCE = 'presence';
export const STATE_REPORTED = 'state/reported';
export const STATE_DESIRED = 'state/desired';
export const STATE_DELTA = 'state/delta';
export const STATE_GET = 'state/get';
/** The filter a device subscribes to for its commands. */
export const COMMANDS = 'commands/+';
export const commandSuffix = (commandId: string): string => `commands/${commandId}`;
export const commandResult = (commandId: string): string => `commands/${commandId}/result`;
export const updateSuffix = (name: string): string => `updates/${name}`;
/** A gateway asks the platform to register (or confirm) a child it relays (protocol §3.5), on its own prefix. */
export const GATEWAY_REGISTER = 'gateway/register';
/** The platform's answer to a gateway request, on the gateway's own prefix. */
export const GATEWAY_RESULT = 'gateway/result';
/** The platform tells a gateway that a child was cut from it (moved, detached, out of service). */
export const GATEWAY_DETACHED = 'gateway/detached';
/** The filter a gateway subscribes to for both. */
export const GATEWAY_REPLIES = 'gateway/+';
/** Request IDs a gateway may give its requests. */
export const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** A button press on the device (binding: it opens the claim window; not the online/offline `presence`). */
export const BINDING_PRESENCE = 'binding/presence';
/** The platform asks the device to erase its user data (unbind, transfer, account deletion). */
export const BINDING_RESET = 'binding/reset';
/** The device confirms it erased its user data. */
export const BINDING_RESET_RESULT = 'binding/reset/result';
/** The update channel only the platform publishes on (a device publishing there would talk to itself). */
const PLATFORM_UPDATE_CHANNEL = 'available';

/** Encodings of a telemetry payload: JSON on `telemetry`, CBOR on `telemetry/cbor`. */
export type PayloadFormat = 'json' | 'cbor';

/** What a device publishes on, below `d/<id>/`. */
export type DeviceChannel =
  | { kind: 'telemetry'; format: PayloadFormat }
  | { kind: 'state_reported' }
  | { kind: 'state_get' }
  | { kind: 'command_result'; commandId: string }
  | { kind: 'presence' }
  | { kind: 'update'; name: string }
  | { kind: 'gateway_register' }
  | { kind: 'binding_presence' }
  | { kind: 'binding_reset_result' };

/** What the platform publishes on, below `d/<id>/`. */
export type PlatformChannel =
  | { kind: 'errors' }
  | { kind: 'state_desired' }
  | { kind: 'state_delta' }
  | { kind: 'command'; commandId: string }
  | { kind: 'update'; name: string }
  | { kind: 'gateway_result' }
  | { kind: 'gateway_detached' }
  | { kind: 'binding_reset' };

/** Topics the platform publishes to a device, below `d/<id>/` (as filters, documented for subscribers). */
export const SERVER_TOPICS = [STATE_DESIRED, STATE_DELTA, COMMANDS, ERRORS, BINDING_RESET, 'updates/+'] as const;

export function deviceChannelSuffix(channel: DeviceChannel): string {
  switch (channel.kind) {
    case 'telemetry':
      return channel.format === 'cbor' ? TELEMETRY_CBOR : TELEMETRY;
    case 'state_reported':
      return STATE_REPORTED;
    case 'state_get':
      return STATE_GET;
    case 'command_result':
      return commandResult(channel.commandId);
    case 'presence':
      return PRESENCE;
    case 'binding_presence':
      return BINDING_PRESENCE;
    case 'binding_reset_result':
      return BINDING_RESET_RESULT;
    case 'update':
      return updateSuffix(channel.name);
    case 'gateway_register':
      return GATEWAY_REGISTER;
  }
}

/** The device channel a suffix names, or null: anything else is not a device's to publish on. */
export function parseDeviceChannel(suffix: string): DeviceChannel | null {
  switch (suffix) {
    case TELEMETRY:
      return { kind: 'telemetry', format: 'json' };
    case TELEMETRY_CBOR:
      return { kind: 'telemetry', format: 'cbor' };
    case STATE_REPORTED:
      return { kind: 'state_reported' };
    case STATE_GET:
      return { kind: 'state_get' };
    case PRESENCE:
      return { kind: 'presence' };
    case GATEWAY_REGISTER:
      return { kind: 'gateway_register' };
    case BINDING_PRESENCE:
      return { kind: 'binding_presence' };
    case BINDING_RESET_RESULT:
      return { kind: 'binding_reset_result' };
  }
  const levels = suffix.split('/');
  if (levels.length === 3 && levels[0] === 'commands' && COMMAND_ID.test(levels[1]!) && levels[2] === 'result')
    return { kind: 'command_result', commandId: levels[1]! };
  if (levels.length === 2 && levels[0] === 'updates' && UPDATE_CHANNEL.test(levels[1]!) && levels[1] !== PLATFORM_UPDATE_CHANNEL)
    return { kind: 'update', name: levels[1]! };
  return null;
}

export function platformChannelSuffix(channel: PlatformChannel): string {
  switch (channel.kind) {
    case 'errors':
      return ERRORS;
    case 'state_desired':
      return STATE_DESIRED;
    case 'state_delta':
      return STATE_DELTA;
    case 'command':
      return commandSuffix(channel.commandId);
    case 'binding_reset':
      return BINDING_RESET;
    case 'update':
      return updateSuffix(channel.name);
    case 'gateway_result':
      return GATEWAY_RESULT;
    case 'gateway_detached':
      return GATEWAY_DETACHED;
  }
}

/** The platform channel a suffix names, or null (a device ignores anything else). */
export function parsePlatformChannel(suffix: string): PlatformChannel | null {
  switch (suffix) {
    case ERRORS:
      return { kind: 'errors' };
    case STATE_DESIRED:
      return { kind: 'state_desired' };
    case STATE_DELTA:
      return { kind: 'state_delta' };
    case GATEWAY_RESULT:
      return { kind: 'gateway_result' };
    case GATEWAY_DETACHED:
      return { kind: 'gateway_detached' };
    case BINDING_RESET:
      return { kind: 'binding_reset' };
  }
  const levels = suffix.split('/');
  if (levels.length === 2 && levels[0] === 'commands' && COMMAND_ID.test(levels[1]!)) return { kind: 'command', commandId: levels[1]! };
  if (levels.length === 2 && levels[0] === 'updates' && UPDATE_CHANNEL.test(levels[1]!)) return { kind: 'update', name: levels[1]! };
  return null;
}

/** Splits `d/<deviceId>/<suffix>`; null for a topic outside the scheme or a device ID certificates cannot carry. */
export function splitDeviceTopic(topic: string): { deviceId: string; suffix: string } | null {
  const first = topic.indexOf('/');
  const second = topic.indexOf('/', first + 1);
  if (first < 0 || second < 0 || topic.slice(0, first) !== TOPIC_PREFIX) return null;
  const deviceId = topic.slice(first + 1, second);
  if (!DEVICE_ID.test(deviceId)) return null;
  return { deviceId, suffix: topic.slice(second + 1) };
}

/** What is wrong with the shape of a topic or filter (too long, too deep, NUL), or null. */
export function topicShapeProblem(topic: string): string | null {
  if (topic.length === 0) return 'empty topic';
  if (utf8Length(topic) > MAX_TOPIC_LENGTH) return `topic longer than ${MAX_TOPIC_LENGTH} bytes`;
  if (topic.includes('\u0000')) return 'topic contains NUL';
  if (topic.split('/').length > MAX_TOPIC_LEVELS) return `topic deeper than ${MAX_TOPIC_LEVELS} levels`;
  return null;
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

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

// --- messages ------------------------------------------------------------------------------

/** A telemetry value: finite number, boolean, null or a short string. */
export type TelemetryValue = number | boolean | null | string;
export type TelemetryValues = Record<string, TelemetryValue>;

/** One reading as a device sends it on `telemetry` (protocol §3.1). */
export interface Reading {
  /** Milliseconds since the epoch, by the device's clock; omitted: the platform's receive time. */
  ts?: number;
  values: TelemetryValues;
}

/** A command as the platform sends it on `commands/<commandId>` (protocol §3.4). */
export interface Command {
  id: string;
  name: string;
  params: Record<string, unknown>;
  timeoutMs?: number;
  issuedAt?: number;
}

/** A command's outcome as the device reports it on `commands/<commandId>/result`. */
export interface CommandOutcome {
  status: 'ok' | 'error' | 'rejected';
  result?: Record<string, unknown>;
  error?: string;
}

export type JsonObject = { [key: string]: unknown };

/** A gateway's request to register a child (protocol §3.5), on `d/<gateway>/gateway/register`. */
export interface ChildRegistration {
  /** The gateway's ID for the request, echoed in the answer. */
  id: string;
  /** The child's serial (unique in the organization). */
  serial: string;
  /** The child's product, by ID or by name. */
  productId?: string;
  product?: string;
}

/** A child as the platform tells its gateway. */
export interface ChildDevice {
  deviceId: string;
  serial: string;
  productId: string;
  status: string;
}

/** The answer on `d/<gateway>/gateway/result`. */
export type GatewayResult =
  { id: string; ok: true; child: ChildDevice } | { id: string; ok: false; error: { code: string; message: string } };

/** The notice on `d/<gateway>/gateway/detached`: the gateway may no longer speak for this child. */
export interface ChildDetached {
  deviceId: string;
  reason: string;
}

/**
 * What a device signs to prove it is in the hands of the consumer claiming it (docs/binding.md):
 * the platform's nonce, relayed by the app over a local link (BLE, the device's access point, a
 * QR code on its screen), bound to the device ID. ECDSA P-256 with SHA-256 over these UTF-8 bytes,
 * by the key of the device's certificate; the signature DER, base64.
 */
export const claimProofMessage = (deviceId: string, nonce: string): string => `bulwark-claim-proof:v1:${deviceId}:${nonce}`;

/** What the platform sends on `binding/reset` (protocol §3.6): erase the user data, then confirm with this ID. */
export interface UserDataReset {
  resetId: string;
  issuedAt: number;
}

/** The device's confirmation on `binding/reset/result`. */
export interface UserDataResetResult {
  resetId: string;
  status: 'ok' | 'error';
  error?: string;
}
