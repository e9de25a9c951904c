/**
 * @bulwark/device: the device side of the Bulwark protocol for Linux-class devices and gateways.
 * Enrollment over EST, the identity directory (keys on disk or on a PKCS#11 token), symmetric-key
 * tokens, the MQTT client with its offline queue, shadow and command handlers, and the update
 * agent: TUF image repository and director verification, resumable downloads, signed version
 * reports, A/B slots with boot backends (directory, GRUB, U-Boot) and rollback.
 */
export { Backoff, type BackoffOptions } from './backoff.js';
export { DeviceClient, type DeviceClientOptions, type DeviceClientStats, type DeviceCredentials } from './client.js';
export {
  ChildRegistrationError,
  ClientStoppedError,
  ConnectionRefusedError,
  DeviceError,
  IdentityError,
  IdentityLockedError,
  KeyExposedError,
  PlatformError,
  QueueClosedError,
  QueueError,
  QueueFullError,
  QueueWriteError,
} from './errors.js';
export { enroll, renew, type EnrollOptions, type RenewOptions } from './est.js';
export { ChildHandle, GatewayClient, type ChildProduct } from './gateway.js';
export {
  CA_FILE,
  CERT_FILE,
  deviceIdOf,
  IdentityStore,
  KEY_FILE,
  TOKEN_KEY_FILE,
  type DeviceIdentity,
  type IdentityStoreOptions,
} from './identity.js';
export type { CommandHandler, DesiredHandler } from './inbox.js';
export { clientTlsOptions, createCsr, generateDeviceKey, signDer, type ClientTlsOptions, type DeviceKey } from './keys.js';
export { DirectoryLock, LOCK_FILE } from './lock.js';
export {
  DEFAULT_ENGINE,
  PIN_ENV,
  Pkcs11Error,
  Pkcs11Key,
  SOFTHSM_MODULE,
  type Pkcs11KeyOptions,
  type Pkcs11KeyReference,
} from './pkcs11.js';
export { FileQueue, MemoryQueue, type FileQueueOptions, type MessageQueue, type QueuedMessage, type QueueOptions } from './queue.js';
export { deviceSasToken } from './sas.js';
export { SeenIds } from './seen-ids.js';
export type { Command, CommandOutcome, ErrorReply, JsonObject, Reading, TelemetryValue, TelemetryValues } from '@bulwark/protocol';
export {
  UpdateAgent,
  AGENT_STEPS,
  type AgentOptions,
  type AgentStep,
  type BootOutcome,
  type CheckOutcome,
  type HealthContext,
  type UpdateChannel,
} from './updates/agent.js';
export { approveTarget, type ApprovedUpdate, type DeviceFacts } from './updates/approve.js';
export { DirectorClient, verifyDirectorTargets, type DirectorTarget, type DirectorVerdict } from './updates/director.js';
export { downloadImage, type DownloadOptions } from './updates/download.js';
export {
  DirectorMismatchError,
  DownloadStalledError,
  HardwareMismatchError,
  HashMismatchError,
  HealthCheckFailedError,
  LengthExceededError,
  MetadataExpiredError,
  MetadataInvalidError,
  RollbackRefusedError,
  TargetUnknownError,
  UpdateError,
} from './updates/errors.js';
export { mutualTls, TufFetcher, type HttpGet } from './updates/https.js';
export { provisionAgentState, type ProvisionOptions } from './updates/provision.js';
export { ReportCounter, signVersionReport, verifyVersionReport } from './updates/report.js';
export { ImageRepository, TUF_LIMITS, type ImageRepositoryOptions, type PlatformRepositoryOptions } from './updates/repository.js';
export {
  BOOT_BACKENDS,
  BootBackend,
  BootBackendError,
  DirBootBackend,
  type BootBackendKind,
  type BootBackendSettings,
  type BootVariables,
} from './updates/boot-backend.js';
export { GrubBootBackend, openBootBackend, UBootBootBackend } from './updates/boot-env.js';
export {
  Slots,
  type BootDecision,
  type BootState,
  type CommittedNote,
  type SlotManifest,
  type SlotName,
  type Trial,
  type TrialRecord,
} from './updates/slots.js';
export { mqttUpdateChannel, onUpdatesAvailable, type UpdateMessagingClient } from './updates/mqtt-channel.js';
