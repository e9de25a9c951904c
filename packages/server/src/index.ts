/**
 * @bulwark/server: the platform as a library (for tests, benchmarks and embedding).
 */
export { openPlatform, type Platform, type PlatformOptions } from './platform.js';
export { loadConfig, defaultConfig, type Config } from './ops/config.js';
export { initialize, DEFAULT_INIT } from './runner/init.js';
export { startServer, type RunningServer } from './runner/server.js';
