/**
 * What the companion app reads from the platform: the consumer routes under /api/v1/my (the same
 * routes and scopes as @bulwark/app-sdk's APP_ROUTES, docs/binding.md), called through the
 * console's api() with the consumer's cookie session and its CSRF token in memory. The app is
 * first-party and served from the API's own origin, so it signs in with `mode: cookie` (HttpOnly,
 * SameSite=Strict) instead of the SDK's OAuth bearer tokens, which script would have to hold.
 * The shapes it reads (a consumer's device, members, invitations, state, readings, commands,
 * privacy) come from @bulwark/protocol, as the SDK's and the server's do.
 */
import type {
  CommandView,
  DevicePrivacyView,
  DeviceRole,
  InvitationView,
  LatestView,
  MemberView,
  MyDeviceView,
  MyPresenceView,
  PrivacyView,
  ReadingView,
  ShadowView,
} from '@bulwark/protocol';
import { api } from '../api';

export type {
  DevicePrivacyView,
  InvitationView,
  MemberView,
  MyDeviceView,
  MyPresenceView,
  PrivacyView,
  ReadingView,
  TelemetryValue,
} from '@bulwark/protocol';

/** The commands the app offers (the platform's binding.consumerCommands decides; default `identify`). */
export const COMMANDS = [{ name: 'identify', label: 'Identify (blink its light)' }];

export const ROLE_LABEL: Record<DeviceRole, string> = {
  owner: 'Owner',
  member: 'Shared with me: can use',
  guest: 'Shared with me: can view',
};

const device = (id: string) => `/my/devices/${encodeURIComponent(id)}`;

export const my = {
  devices: async () => (await api<{ devices: MyDeviceView[] }>('GET', '/my/devices')).devices,
  device: (id: string) => api<MyDeviceView>('GET', device(id)),
  presence: (id: string) => api<MyPresenceView>('GET', `${device(id)}/presence`),
  state: (id: string) => api<ShadowView>('GET', `${device(id)}/state`),
  /** Merges `patch` into the desired state at `version` (refused with 409 if it moved on meanwhile). */
  setDesired: (id: string, patch: Record<string, unknown>, version: number) =>
    api<ShadowView>('PATCH', `${device(id)}/state/desired`, { state: patch, version }),
  /** One page of the readings from `from` to `to`, oldest first. */
  readings: (id: string, from: string, to: string, cursor?: string) =>
    api<{ readings: ReadingView[]; nextCursor: string | null }>(
      'GET',
      `${device(id)}/telemetry?${new URLSearchParams({ from, to, limit: '500', ...(cursor ? { cursor } : {}) }).toString()}`,
    ),
  latest: (id: string) => api<LatestView>('GET', `${device(id)}/telemetry/latest`),
  claim: (code: string) => api<MyDeviceView>('POST', '/my/devices/claim', { code }),
  rename: (id: string, label: string | null) => api<MyDeviceView>('PATCH', device(id), { label }),
  command: (id: string, name: string) => api<CommandView>('POST', `${device(id)}/commands`, { name }),
  commandOutcome: (id: string, commandId: string) =>
    api<CommandView>('GET', `${device(id)}/commands/${encodeURIComponent(commandId)}?waitMs=5000`),
  shares: (id: string) => api<{ members: MemberView[]; invitations: InvitationView[] }>('GET', `${device(id)}/shares`),
  share: (id: string, email: string, role: 'member' | 'guest') => api<InvitationView>('POST', `${device(id)}/shares`, { email, role }),
  revokeShare: (id: string, userId: string) => api('DELETE', `${device(id)}/shares/${encodeURIComponent(userId)}`),
  cancelInvitation: (id: string, invitationId: string) => api('DELETE', `${device(id)}/invitations/${encodeURIComponent(invitationId)}`),
  unbind: (id: string) => api('DELETE', device(id)),
  leave: (id: string) => api('POST', `${device(id)}/leave`),
  transfer: (id: string, email: string) => api<InvitationView>('POST', `${device(id)}/transfer`, { email }),
  /** What a product senses and collects, and why: read before claiming it. */
  productPrivacy: (productId: string) => api<PrivacyView>('GET', `/my/products/${encodeURIComponent(productId)}/privacy`),
  privacy: (id: string) => api<DevicePrivacyView>('GET', `${device(id)}/privacy`),
  setConsents: (id: string, decisions: Record<string, boolean>) => api<DevicePrivacyView>('PUT', `${device(id)}/consents`, decisions),
  invitations: async () => (await api<{ invitations: InvitationView[] }>('GET', '/my/invitations')).invitations,
  accept: (invitationId: string) => api<MyDeviceView>('POST', `/my/invitations/${encodeURIComponent(invitationId)}/accept`),
  decline: (invitationId: string) => api('DELETE', `/my/invitations/${encodeURIComponent(invitationId)}`),
  /** The live stream's URL (server-sent events; the session cookie goes with it, same origin). */
  liveUrl: (id: string) => `/api/v1${device(id)}/live`,
};

/** The device's name as I see it: my label, else its serial number. */
export const nameOf = (d: MyDeviceView) => d.label ?? d.serial;
