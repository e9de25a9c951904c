/** The binding domain's HTTP routes: a consumer's devices (my-devices.ts), their live state (live.ts), the operator side (operator.ts). */
export { liveRoutes } from './live.js';
export { myDeviceRoutes } from './my-devices.js';
export { operatorBindingRoutes } from './operator.js';
export { privacyRoutes } from './privacy.js';
