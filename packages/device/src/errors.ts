/**
 * The errors the device SDK throws, as a small tree callers can tell apart by class or by `code`.
 */

/** Base of every SDK error; `code` is stable and dotted like the platform's. */
export class DeviceError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The identity directory is missing a file, or holds one that is unsafe to use. */
export class IdentityError extends DeviceError {}

/** The private key file can be read by group or others: refused rather than used. */
export class KeyExposedError extends IdentityError {
  constructor(
    readonly path: string,
    mode: number,
  ) {
    super(
      `${path} has mode ${(mode & 0o777).toString(8)}; a device key must be readable by its owner only (chmod 600)`,
      'identity.key_exposed',
    );
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
    super(
      `The broker refused the connection (CONNACK ${returnCode}: ${CONNACK_REASONS[returnCode] ?? 'unknown'}); not retrying`,
      `mqtt.connack_${returnCode}`,
    );
  }
}

/** The identity directory is in use by another live process (its client holds `client.lock`). */
export class IdentityLockedError extends IdentityError {
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(
      `${path} is held by process ${pid}, which is still running: one process at a time may use an identity directory`,
      'identity.locked',
    );
  }
}

/** The offline queue did not accept a message (or record an acknowledgement); nothing of it was kept. */
export class QueueError extends DeviceError {}

/** The offline queue is at its size bound; the message was not accepted. */
export class QueueFullError extends QueueError {
  constructor(limitBytes: number) {
    super(`The offline queue holds its limit of ${limitBytes} bytes of unacknowledged messages`, 'queue.full');
  }
}

/** The queue's file system refused a write: `queue.storage_full` (ENOSPC, EDQUOT) or `queue.write_failed`; the file is as it was before it. */
export class QueueWriteError extends QueueError {
  constructor(
    readonly path: string,
    cause: NodeJS.ErrnoException,
  ) {
    const full = cause.code === 'ENOSPC' || cause.code === 'EDQUOT';
    const what = full ? 'No space left for the offline queue' : 'The offline queue could not be written';
    super(
      `${what} (${path}: ${cause.code ?? cause.message}); nothing of this write was kept`,
      full ? 'queue.storage_full' : 'queue.write_failed',
      { cause },
    );
  }
}

/** The queue was closed (its client stopped); nothing more can be queued. */
export class QueueClosedError extends QueueError {
  constructor() {
    super('The offline queue is closed: its client was stopped', 'queue.closed');
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

/** The platform refused a gateway's request to register a child (`gateway.*`, `payload.invalid`...), or did not answer in time. */
export class ChildRegistrationError extends DeviceError {
  constructor(
    readonly serial: string,
    code: string,
    message: string,
  ) {
    super(`Child "${serial}" not registered: ${message}`, code);
  }
}
