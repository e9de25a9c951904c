/**
 * The devices domain's HTTP routes, one file per resource: the registry (devices.ts), enrollment
 * and EST (enrollment.ts, which registers bootstrap-cas.ts), symmetric keys (symmetric-keys.ts),
 * and desired/reported state with commands (state.ts).
 */
export { deviceRoutes } from './devices.js';
export { enrollmentRoutes } from './enrollment.js';
export { stateRoutes } from './state.js';
export { symmetricKeyRoutes } from './symmetric-keys.js';
