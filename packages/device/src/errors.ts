/**
 * The errors the device SDK throws, as a small tree callers can tell apart by class or by `code`.
 */

/** Base of every SDK error; `code` is stable and dotted like the platform's. */
export class DeviceError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The identity directory is missing a file, or holds one that is unsafe to use. */
export class IdentityError extends DeviceError {}

/** The private key file can be read by group or others: refused rather than used. */
export class KeyExposedError extends IdentityError {
  constructor(readonly path: string, mode: number) {
    super(`${path} has mode ${(mode & 0o777).toString(8)}; a device key must be readable by its owner only (chmod 600)`, 'identity.key_exposed');
  }
}

/** The platform answered an HTTP request (EST, operator API) with an error body or status. */
export class PlatformError extends DeviceError {
  constructor(
    message: string,
    code: string,
    readonly status: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message, code);
  }
}

/** The broker refused the CONNECT: wrong credentials, not authorized, or identifier rejected. Not retried. */
export class ConnectionRefusedError extends DeviceError {
  /** The CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5). */
  constructor(readonly returnCode: number) {
    super(`The broker refused the connection (CONNACK ${returnCode}: ${CONNACK_REASONS[returnCode] ?? 'unknown'}); not retrying`, `mqtt.connack_${returnCode}`);
  }
}

/** The offline queue is at its size bound; the message was not accepted. */
export class QueueFullError extends DeviceError {
  constructor(limitBytes: number) {
    super(`The offline queue holds its limit of ${limitBytes} bytes of unacknowledged messages`, 'queue.full');
  }
}

/** The client was stopped while an operation waited on it. */
export class ClientStoppedError extends DeviceError {
  constructor() {
    super('The device client was stopped', 'client.stopped');
  }
}

const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
  // MQTT 5 reason codes
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x8c: 'bad authentication method',
};
