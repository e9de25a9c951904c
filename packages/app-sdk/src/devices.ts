/**
 * The consumer's devices through the app API (`/api/v1/my/…`, docs/binding.md): claim with the
 * code and a presence proof, read and control, share, transfer, unbind, and follow live state.
 * Each method names the route it calls in `APP_ROUTES`, which a test checks against the
 * platform's OpenAPI document, so the SDK cannot drift from the server.
 */
import type {
  CommandView as Command,
  DevicePrivacyView as DevicePrivacy,
  InvitationView as Invitation,
  MemberView as Member,
  MyDeviceView as MyDevice,
  MyPresenceView,
  PrivacyView as ProductPrivacy,
  ReadingView as Reading,
  ShadowView as Shadow,
} from '@bulwark/protocol';
import type { ApiClient, Method } from './api.js';
import { readEventStream, type ServerSentEvent } from './sse.js';

/** The shapes the consumer API serves, under the SDK's names: defined once in @bulwark/protocol, which the server builds them from. */
export type { DeviceRole, PurposeDeclaration as Purpose } from '@bulwark/protocol';
export type { Command, DevicePrivacy, Invitation, Member, MyDevice, ProductPrivacy, Reading, Shadow };

/** A live-state event: the reported state, readings as they arrive, or the end of the stream (and why). */
export type LiveEvent =
  | { event: 'reported'; data: { state: Record<string, unknown> } }
  | { event: 'telemetry'; data: { readings: { ts: string; values: Reading['values'] }[] } }
  | { event: 'end'; data: { reason: string } };

/** Every route the SDK calls: [method, path template]. */
export const APP_ROUTES = {
  account: ['GET', '/api/v1/me'],
  exportAccount: ['GET', '/api/v1/me/export'],
  deleteAccount: ['DELETE', '/api/v1/me'],
  devices: ['GET', '/api/v1/my/devices'],
  claim: ['POST', '/api/v1/my/devices/claim'],
  claimChallenge: ['POST', '/api/v1/my/devices/claim/challenge'],
  device: ['GET', '/api/v1/my/devices/{id}'],
  rename: ['PATCH', '/api/v1/my/devices/{id}'],
  unbind: ['DELETE', '/api/v1/my/devices/{id}'],
  leave: ['POST', '/api/v1/my/devices/{id}/leave'],
  presence: ['GET', '/api/v1/my/devices/{id}/presence'],
  state: ['GET', '/api/v1/my/devices/{id}/state'],
  setDesired: ['PATCH', '/api/v1/my/devices/{id}/state/desired'],
  telemetry: ['GET', '/api/v1/my/devices/{id}/telemetry'],
  sendCommand: ['POST', '/api/v1/my/devices/{id}/commands'],
  command: ['GET', '/api/v1/my/devices/{id}/commands/{commandId}'],
  shares: ['GET', '/api/v1/my/devices/{id}/shares'],
  share: ['POST', '/api/v1/my/devices/{id}/shares'],
  revokeShare: ['DELETE', '/api/v1/my/devices/{id}/shares/{userId}'],
  transfer: ['POST', '/api/v1/my/devices/{id}/transfer'],
  invitations: ['GET', '/api/v1/my/invitations'],
  acceptInvitation: ['POST', '/api/v1/my/invitations/{invitationId}/accept'],
  declineInvitation: ['DELETE', '/api/v1/my/invitations/{invitationId}'],
  live: ['GET', '/api/v1/my/devices/{id}/live'],
  productPrivacy: ['GET', '/api/v1/my/products/{id}/privacy'],
  privacy: ['GET', '/api/v1/my/devices/{id}/privacy'],
  setConsents: ['PUT', '/api/v1/my/devices/{id}/consents'],
} as const satisfies Record<string, readonly [Method, string]>;

type RouteName = keyof typeof APP_ROUTES;

function pathOf(name: RouteName, params: Record<string, string> = {}, query?: Record<string, string | number | undefined>): string {
  const path = APP_ROUTES[name][1].replace(/\{(\w+)\}/g, (_m, key: string) => {
    const value = params[key];
    if (value === undefined) throw new TypeError(`${name} needs ${key}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(key, String(value));
  return search.size > 0 ? `${path}?${search}` : path;
}

export class MyDevices {
  constructor(private readonly api: ApiClient) {}

  private call<T>(name: RouteName, params?: Record<string, string>, body?: unknown, query?: Record<string, string | number | undefined>) {
    return this.api.json<T>(APP_ROUTES[name][0], pathOf(name, params, query), body);
  }

  async list(): Promise<MyDevice[]> {
    return (await this.call<{ devices: MyDevice[] }>('devices')).devices;
  }

  get(id: string): Promise<MyDevice> {
    return this.call('device', { id });
  }

  /** Claims with the code from the box while the device's claim window is open (its button was pressed), or with a signed challenge. */
  claim(code: string, proof?: { nonce: string; signature: string }): Promise<MyDevice> {
    return this.call('claim', undefined, proof ? { code, proof } : { code });
  }

  /** A nonce for the device to sign over a local link, when it has no button: then `claim(code, { nonce, signature })`. */
  claimChallenge(code: string): Promise<{ nonce: string; expiresAt: string }> {
    return this.call('claimChallenge', undefined, { code });
  }

  rename(id: string, label: string | null): Promise<MyDevice> {
    return this.call('rename', { id }, { label });
  }

  /** Releases a device I own: shares end, the device erases its user data and can be claimed again. */
  async unbind(id: string): Promise<void> {
    await this.call('unbind', { id });
  }

  /** Gives up a device shared with me. */
  async leave(id: string): Promise<void> {
    await this.call('leave', { id });
  }

  /** Whether the device is connected now, and since when (null: it never connected). */
  presence(id: string): Promise<MyPresenceView> {
    return this.call('presence', { id });
  }

  state(id: string): Promise<Shadow> {
    return this.call('state', { id });
  }

  setDesired(id: string, state: Record<string, unknown>, version?: number): Promise<Shadow> {
    return this.call('setDesired', { id }, version === undefined ? { state } : { state, version });
  }

  telemetry(
    id: string,
    range: { from: string; to: string; limit?: number; cursor?: string },
  ): Promise<{ readings: Reading[]; nextCursor: string | null }> {
    return this.call('telemetry', { id }, undefined, range);
  }

  sendCommand(id: string, name: string, params?: Record<string, unknown>): Promise<Command> {
    return this.call('sendCommand', { id }, params ? { name, params } : { name });
  }

  command(id: string, commandId: string, waitMs?: number): Promise<Command> {
    return this.call('command', { id, commandId }, undefined, { waitMs });
  }

  shares(id: string): Promise<{ members: Member[]; invitations: Invitation[] }> {
    return this.call('shares', { id });
  }

  share(id: string, email: string, role: 'member' | 'guest'): Promise<Invitation> {
    return this.call('share', { id }, { email, role });
  }

  async revokeShare(id: string, userId: string): Promise<void> {
    await this.call('revokeShare', { id, userId });
  }

  transfer(id: string, email: string): Promise<Invitation> {
    return this.call('transfer', { id }, { email });
  }

  async invitations(): Promise<Invitation[]> {
    return (await this.call<{ invitations: Invitation[] }>('invitations')).invitations;
  }

  acceptInvitation(invitationId: string): Promise<MyDevice> {
    return this.call('acceptInvitation', { invitationId });
  }

  async declineInvitation(invitationId: string): Promise<void> {
    await this.call('declineInvitation', { invitationId });
  }

  /** What a product senses and collects, and why: show it before the consumer claims (the product ID is on the box or in the QR code). */
  productPrivacy(productId: string): Promise<ProductPrivacy> {
    return this.call('productPrivacy', { id: productId });
  }

  privacy(id: string): Promise<DevicePrivacy> {
    return this.call('privacy', { id });
  }

  /** The owner grants or withdraws optional purposes (`{ analytics: false }`); withdrawing stops that collection at once. */
  setConsents(id: string, decisions: Record<string, boolean>): Promise<DevicePrivacy> {
    return this.call('setConsents', { id }, decisions);
  }

  /**
   * Follows the device's live state until the stream ends (revoked, expired) or `signal` aborts;
   * resolves with the reason it ended.
   */
  async live(id: string, onEvent: (event: LiveEvent) => void, signal?: AbortSignal): Promise<string> {
    const answer = await this.api.send(APP_ROUTES.live[0], pathOf('live', { id }), undefined, signal);
    if (!answer.body) return 'no_body';
    let reason = 'closed';
    await readEventStream(
      answer.body,
      (raw: ServerSentEvent) => {
        if (raw.event !== 'reported' && raw.event !== 'telemetry' && raw.event !== 'end') return;
        const event = { event: raw.event, data: JSON.parse(raw.data) as never } as LiveEvent;
        if (event.event === 'end') reason = event.data.reason;
        onEvent(event);
      },
      signal,
    ).catch((error: unknown) => {
      if (!signal?.aborted) throw error;
      reason = 'aborted';
    });
    return reason;
  }
}

/** The consumer's own account through the app (`account` scope). */
export class MyAccount {
  constructor(private readonly api: ApiClient) {}

  get(): Promise<{ id: string; email: string; name: string; kind: string }> {
    return this.api.json('GET', APP_ROUTES.account[1]);
  }

  /** Everything the platform holds about me, devices included (JSON). */
  export(): Promise<Record<string, unknown>> {
    return this.api.json('GET', APP_ROUTES.exportAccount[1]);
  }

  /** Deletes the account: needs a recent sign-in (sign in again through the app first); owned devices are unbound and reset. */
  async delete(): Promise<void> {
    await this.api.json('DELETE', APP_ROUTES.deleteAccount[1]);
  }
}
