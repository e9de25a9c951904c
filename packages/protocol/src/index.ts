/**
 * Wire types shared by the Bulwark server, its clients and devices.
 * Depends on nothing of ours; grows as the device protocol lands.
 */
export * from './accounts.js';
export * from './assessment.js';
export * from './audit.js';
export * from './binding.js';
export * from './claim-codes.js';
export * from './devices.js';
export * from './errors.js';
export * from './releases.js';
export * from './rollouts.js';
export * from './telemetry.js';
export * from './topics.js';
export * from './updates.js';
