/**
 * The updates domain's HTTP routes, one file per resource: the TUF image repository
 * (repository.ts), releases (releases.ts), the firmware blob store (blobs.ts) and rollouts with
 * the director (rollouts.ts).
 */
export { blobRoutes } from './blobs.js';
export { releaseRoutes } from './releases.js';
export { repositoryRoutes } from './repository.js';
export { rolloutRoutes } from './rollouts.js';
