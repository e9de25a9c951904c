/** The app-authorization routes: the OAuth endpoints (at the root) and the /api/v1 management routes. */
export { appClientRoutes } from './clients.js';
export { oauthRoutes, type OAuthRouteDeps } from './oauth.js';
