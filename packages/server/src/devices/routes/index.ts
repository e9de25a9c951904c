/**
 * The devices domain's HTTP routes, one file per resource: the registry (devices.ts), enrollment
 * and EST (enrollment.ts, which registers bootstrap-cas.ts), symmetric keys (symmetric-keys.ts),
 * desired/reported state with commands (state.ts), and gateways with their children (gateways.ts).
 */
export { deviceRoutes } from './devices.js';
export { enrollmentRoutes } from './enrollment.js';
export { gatewayRoutes } from './gateways.js';
export { stateRoutes } from './state.js';
export { symmetricKeyRoutes } from './symmetric-keys.js';
