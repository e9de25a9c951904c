/**
 * The server's test harness as other packages' tests use it (`@bulwark/server/testing`, source
 * condition only: testing/ is not built): a platform node on either engine, signed-in owners,
 * provisioned devices and their MQTT clients, rollout and TUF ceremony fixtures, and the few
 * server functions a device test checks its output against.
 */
export { cliActor, type Actor } from '../accounts/roles.js';
export { createToken, deviceResource } from '../devices/sas.js';
export type { Platform } from '../platform.js';
export { parseSignedReport, reportSignatureValid } from '../updates/rollout-messages.js';
export type { RolloutInput } from '../updates/rollout-model.js';
export { onlineKeysFromJson } from '../updates/tuf/offline.js';
export { firstOwner, insertConsumer, signIn, stepUp } from './accounts.js';
export { openLiveStream } from './live-stream.js';
export { mailsDuring, tokenIn } from './mail.js';
export { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from './devices.js';
export { ENGINES } from './engines.js';
export { connectDevice, eventually, inbox, presenceOnline, settle } from './mqtt.js';
export { hardwareProduct } from './rollout-fixtures.js';
export { ownerSession, startTestPlatform, STRONG_PASSWORD, type TestPlatform } from './server.js';
export { signedBy, TestCeremony } from './tuf-ceremony.js';
export { HttpClient } from './http.js';
export { firstSignIn } from './server.js';
export { startServerProcess, type ServerProcess } from './server-process.js';
export { NetworkFault } from './network-fault.js';
export { REPOSITORY } from './repository.js';
