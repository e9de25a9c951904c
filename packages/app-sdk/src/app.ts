/**
 * One object for a companion app: sign-in (`auth`), the consumer's devices (`devices`) and
 * account (`account`), all on the same token and fetch.
 *
 *   const app = new BulwarkApp({ baseUrl, clientId, redirectUri, scopes: ['devices:read', ...], storage });
 *   const { url, pending } = await app.auth.beginLogin();   // open url; keep pending
 *   await app.auth.completeLogin(redirectedTo, pending);
 *   await app.devices.claim(codeFromTheBox);
 */
import { ApiClient } from './api.js';
import { AppAuth, type AppAuthOptions } from './auth.js';
import { MyAccount, MyDevices } from './devices.js';

export class BulwarkApp {
  readonly auth: AppAuth;
  readonly devices: MyDevices;
  readonly account: MyAccount;

  constructor(options: AppAuthOptions) {
    this.auth = new AppAuth(options);
    const api = new ApiClient({ baseUrl: options.baseUrl, auth: this.auth, ...(options.fetch ? { fetch: options.fetch } : {}) });
    this.devices = new MyDevices(api);
    this.account = new MyAccount(api);
  }
}
