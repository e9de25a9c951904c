/**
 * The device's topics (docs/protocol.md §2): everything below `d/<device ID>/`.
 */
export const topicOf = (deviceId: string, suffix: string): string => `d/${deviceId}/${suffix}`;

export const TELEMETRY = 'telemetry';
export const ERRORS = 'errors';
export const STATE_REPORTED = 'state/reported';
export const STATE_DESIRED = 'state/desired';
export const STATE_DELTA = 'state/delta';
export const STATE_GET = 'state/get';
export const COMMANDS = 'commands/+';
export const commandResult = (commandId: string): string => `commands/${commandId}/result`;

/** Command IDs as the protocol allows them. */
export const COMMAND_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A telemetry value: finite number, boolean, null or a short string. */
export type TelemetryValue = number | boolean | null | string;
export type TelemetryValues = Record<string, TelemetryValue>;

export interface Reading {
  /** Milliseconds since the epoch, by the device's clock; omitted: the platform's receive time. */
  ts?: number;
  values: TelemetryValues;
}

/** An error reply on `d/<id>/errors` (protocol §3.2). */
export interface ErrorReply {
  topic: string;
  code: string;
  message: string;
}

/** A command as the platform sends it (protocol §3.4). */
export interface Command {
  id: string;
  name: string;
  params: Record<string, unknown>;
  timeoutMs?: number;
  issuedAt?: number;
}

/** A command's outcome as the device reports it. */
export interface CommandOutcome {
  status: 'ok' | 'error' | 'rejected';
  result?: Record<string, unknown>;
  error?: string;
}

export type JsonObject = { [key: string]: unknown };
