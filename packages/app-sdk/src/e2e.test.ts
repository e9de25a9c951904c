/**
 * The companion-app journey end to end, through the app SDK against a real platform (HTTPS,
 * the MQTT broker over mutual TLS, a simulated device on the device SDK): sign up, verify the
 * email, sign in with PKCE, read what the product collects and why, claim the device with its
 * button press, consent to an optional purpose, watch its telemetry live,
 * share it, revoke the share (the guest's stream ends), export the account, unbind (the device
 * erases its user data and confirms), delete the account (after a fresh sign-in), and every
 * token of the app is dead afterwards.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { DeviceClient } from '@bulwark/device';
import { startDevicePlatform, type DevicePlatform } from '@bulwark/device/testing';
import { cliActor, eventually, insertConsumer, mailsDuring, signIn, stepUp, STRONG_PASSWORD, tokenIn } from '@bulwark/server/testing';
import { BulwarkApp } from './app.js';
import { APP_ROUTES } from './devices.js';
import { MemoryTokenStorage } from './auth.js';
import type { LiveEvent } from './devices.js';
import { AppApiError, SignInRequiredError } from './errors.js';
import { fetchTrusting } from './testing/fetch.js';

const REDIRECT = 'com.brand.app:/oauth/callback';
const SCOPES = ['account', 'devices:read', 'devices:control', 'devices:share'];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let p: DevicePlatform;
let baseUrl: string;
let clientId: string;
let transport: ReturnType<typeof fetchTrusting>;
const cleanup: (() => unknown)[] = [];

before(async () => {
  const port = await freePort();
  baseUrl = `https://localhost:${port}`;
  // The issuer of app tokens is the deployment's public URL: the one the app talks to.
  p = await startDevicePlatform({ http: { port, publicUrl: baseUrl }, auth: { loginRateLimitPerMinute: 10_000 } });
  transport = fetchTrusting(p.t.ca);
  const app = await p.t.platform.apps.clients.create(cliActor(p.org, 'test'), {
    name: 'Brand app',
    redirectUris: [REDIRECT],
    scopes: SCOPES,
    firstParty: true,
  });
  clientId = app.clientId;
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  transport?.close();
  await p?.close();
});

const newApp = () =>
  new BulwarkApp({ baseUrl, clientId, redirectUri: REDIRECT, scopes: SCOPES, storage: new MemoryTokenStorage(), fetch: transport.fetch });

/** The browser leg of PKCE: the consumer's signed-in session opens the authorization URL; the redirect comes back to the app. */
async function pkceLogin(app: BulwarkApp, sessionToken: string): Promise<void> {
  const { url, pending } = await app.auth.beginLogin();
  const answer = await transport.fetch(url, { headers: { authorization: `Bearer ${sessionToken}` } });
  await answer.body?.cancel();
  assert.equal(answer.status, 302, `authorization answered ${answer.status}`);
  const location = answer.headers.get('location')!;
  assert.ok(location.startsWith(REDIRECT), location);
  await app.auth.completeLogin(location, pending);
}

test('a consumer signs up, claims, watches, shares, revokes, exports, unbinds and deletes, all through the app SDK', async () => {
  const api = p.t.client();
  // Sign up and verify the email address from the mailed link.
  const email = 'casey@example.com';
  const mails = await mailsDuring(p.t, () =>
    api.post('/api/v1/auth/signup', { organization: p.t.org, email, password: STRONG_PASSWORD, name: 'Casey' }),
  );
  assert.equal((await api.post('/api/v1/auth/verify-email', { token: tokenIn(mails[0]!) })).status, 200);
  const login = await api.post('/api/v1/auth/login', { organization: p.t.org, email, password: STRONG_PASSWORD });
  assert.equal(login.status, 200, login.text);
  const session = login.body.token as string;
  // A fresh proof of the password: the app's grant carries it, so deleting the account later is allowed.
  await stepUp(p.t, { id: '', email, password: STRONG_PASSWORD, secret: null } as never, session);

  const app = newApp();
  await pkceLogin(app, session);
  const me = await app.account.get();
  assert.equal(me.email, email);

  // The device: enrolled, connected, its user-data reset handler ready.
  const { deviceId, dir } = await p.enrolledDevice();
  const device = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl });
  cleanup.push(() => device.stop());
  const resets: string[] = [];
  device.onUserDataReset((reset) => void resets.push(reset.resetId));
  await device.connect();
  const code = (await p.t.platform.binding.claims.issueCodes(cliActor(p.org, 'test'), [deviceId]))[0]!.code;

  // Before claiming, the app shows what the product senses and collects, and why.
  await p.t.platform.binding.privacy.declare(cliActor(p.org, 'test'), p.product, {
    senses: ['temperature', 'motion'],
    purposes: [
      { id: 'operation', description: 'Keep the temperature you set', required: true, telemetry: ['temperature'] },
      { id: 'analytics', description: 'Learn when the room is used', required: false, telemetry: ['motion'] },
    ],
  });
  const declared = await app.devices.productPrivacy(p.product);
  assert.deepEqual(
    declared.purposes.map((purpose) => [purpose.id, purpose.required]),
    [
      ['operation', true],
      ['analytics', false],
    ],
  );

  // A code alone does not bind: the button press does.
  await assert.rejects(app.devices.claim(code), (e: AppApiError) => e.code === 'binding.presence_required');
  await device.reportPresence();
  const claimed = await app.devices.claim(code);
  assert.equal(claimed.role, 'owner');
  assert.deepEqual(
    (await app.devices.list()).map((d) => d.id),
    [deviceId],
  );

  // The optional purpose is off until the owner consents.
  assert.deepEqual((await app.devices.privacy(deviceId)).collected, ['temperature']);
  assert.deepEqual((await app.devices.setConsents(deviceId, { analytics: true })).collected, ['motion', 'temperature']);

  // Live telemetry.
  const events: LiveEvent[] = [];
  const watching = new AbortController();
  const live = app.devices.live(deviceId, (event) => events.push(event), watching.signal);
  await eventually(() => events.some((e) => e.event === 'reported'), 5000, 'the stream opened');
  await device.sendTelemetry({ temperature: 21.5 });
  await eventually(
    () => events.some((e) => e.event === 'telemetry' && e.data.readings[0]?.values.temperature === 21.5),
    5000,
    'telemetry live',
  );

  // Share with a guest, who watches too; revoking ends the guest's stream within a second.
  const guest = await insertConsumer(p.t, 'guest@example.com', STRONG_PASSWORD);
  const guestApp = newApp();
  await pkceLogin(guestApp, await signIn(p.t, guest));
  const invitation = await app.devices.share(deviceId, guest.email, 'guest');
  assert.equal((await guestApp.devices.invitations())[0]?.id, invitation.id);
  assert.equal((await guestApp.devices.acceptInvitation(invitation.id)).role, 'guest');
  await assert.rejects(guestApp.devices.setDesired(deviceId, { led: 'on' }), (e: AppApiError) => e.code === 'binding.role_insufficient');
  const guestEvents: LiveEvent[] = [];
  const guestLive = guestApp.devices.live(deviceId, (event) => guestEvents.push(event));
  await eventually(() => guestEvents.length > 0, 5000, 'the guest stream opened');
  const revokedAt = Date.now();
  await app.devices.revokeShare(deviceId, guest.id);
  assert.equal(await guestLive, 'revoked');
  assert.ok(Date.now() - revokedAt < 1000, `guest stream ended ${Date.now() - revokedAt} ms after the revoke`);
  await assert.rejects(guestApp.devices.get(deviceId), (e: AppApiError) => e.status === 404);

  // The export names the device.
  const exported = (await app.account.export()) as { sections: { devices: { bound: { id: string; role: string }[] } } };
  assert.deepEqual(
    exported.sections.devices.bound.map((d) => [d.id, d.role]),
    [[deviceId, 'owner']],
  );

  // Unbind: the owner's stream ends, the device erases its user data and confirms.
  await app.devices.unbind(deviceId);
  assert.equal(await live, 'revoked');
  await eventually(() => resets.length === 1, 5000, 'the device got the reset');
  await eventually(
    async () => (await p.t.platform.binding.service.operatorView(cliActor(p.org, 'test'), deviceId)).lastReset?.confirmedAt != null,
    5000,
    'the device confirmed the reset',
  );
  assert.deepEqual(await app.devices.list(), []);

  // Delete the account; every token the app holds is dead.
  await app.account.delete();
  await assert.rejects(
    app.devices.list(),
    (e: unknown) => e instanceof SignInRequiredError || (e instanceof AppApiError && e.status === 401),
  );
  await assert.rejects(app.auth.refreshNow(), SignInRequiredError);
});

test("every route the SDK calls is in the platform's OpenAPI document with that method", async () => {
  const answer = await transport.fetch(`${baseUrl}/api/openapi.json`);
  const doc = (await answer.json()) as { paths: Record<string, Record<string, { security?: unknown; description?: string }>> };
  const missing = Object.entries(APP_ROUTES)
    .filter(([, [method, path]]) => !doc.paths[path]?.[method.toLowerCase()])
    .map(([name, [method, path]]) => `${name}: ${method} ${path}`);
  assert.deepEqual(missing, []);
});
