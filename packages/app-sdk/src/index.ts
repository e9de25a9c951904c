/**
 * @bulwark/app-sdk: what a companion app needs to act for its consumer against a Bulwark
 * deployment, in browsers and React Native (Web Crypto and fetch only, no Node APIs).
 */
export { AppAuth, MemoryTokenStorage, type AppAuthOptions, type PendingLogin, type StoredTokens, type TokenStorage } from './auth.js';
export { ApiClient, type ApiOptions, type Method } from './api.js';
export { AppApiError, AuthorizationError, SignInRequiredError } from './errors.js';
export { challengeOf, createPkcePair, randomToken, type PkcePair } from './pkce.js';
export { EventStreamParser, readEventStream, type ServerSentEvent } from './sse.js';
export {
  APP_ROUTES,
  MyAccount,
  MyDevices,
  type Command,
  type DevicePrivacy,
  type DeviceRole,
  type Invitation,
  type LiveEvent,
  type Member,
  type MyDevice,
  type ProductPrivacy,
  type Purpose,
  type Reading,
  type Shadow,
} from './devices.js';
export { BulwarkApp } from './app.js';
