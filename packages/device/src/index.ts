/**
 * @bulwark/device: the device side of the Bulwark protocol for Linux-class devices and gateways.
 * Enrollment over EST, the identity directory, the MQTT client with its offline queue, shadow
 * and command handlers.
 */
export { Backoff, type BackoffOptions } from './backoff.js';
export { DeviceClient, type DeviceClientOptions, type DeviceClientStats, type DeviceCredentials } from './client.js';
export { ClientStoppedError, ConnectionRefusedError, DeviceError, IdentityError, KeyExposedError, PlatformError, QueueFullError } from './errors.js';
export { enroll, renew, type EnrollOptions, type RenewOptions } from './est.js';
export { CA_FILE, CERT_FILE, deviceIdOf, IdentityStore, KEY_FILE, type DeviceIdentity } from './identity.js';
export type { CommandHandler, DesiredHandler } from './inbox.js';
export { createCsr, generateDeviceKey } from './keys.js';
export { FileQueue, MemoryQueue, type FileQueueOptions, type MessageQueue, type QueuedMessage, type QueueOptions } from './queue.js';
export { deviceSasToken } from './sas.js';
export { SeenIds } from './seen-ids.js';
export type { Command, CommandOutcome, ErrorReply, JsonObject, Reading, TelemetryValue, TelemetryValues } from './topics.js';
