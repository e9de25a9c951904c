/**
 * What the companion app reads from the platform: the consumer routes under /api/v1/my (the same
 * routes and scopes as @bulwark/app-sdk's APP_ROUTES, docs/binding.md), called through the
 * console's api() with the consumer's cookie session and its CSRF token in memory. The app is
 * first-party and served from the API's own origin, so it signs in with `mode: cookie` (HttpOnly,
 * SameSite=Strict) instead of the SDK's OAuth bearer tokens, which script would have to hold.
 */
import { api } from '../api';

export type DeviceRole = 'owner' | 'member' | 'guest';

export interface MyDevice {
  id: string;
  serial: string;
  productId: string;
  status: string;
  role: DeviceRole;
  label: string | null;
  since: string;
}

export interface Presence {
  online: boolean;
  since: string | null;
}

export interface Member {
  userId: string;
  email: string;
  role: DeviceRole;
  since: string;
}

export interface Invitation {
  id: string;
  deviceId: string;
  kind: 'share' | 'transfer';
  role: DeviceRole;
  email: string;
  createdAt: string;
  expiresAt: string;
}

export interface Shadow {
  reported: { state: Record<string, unknown>; version: number; updatedAt: string | null };
  desired: { state: Record<string, unknown>; version: number; updatedAt: string | null };
}

export type Value = number | string | boolean | null;

export interface Reading {
  ts: string;
  values: Record<string, Value>;
}

export interface Latest {
  values: Record<string, { value: Value; ts: string }>;
}

export interface Command {
  id: string;
  name: string;
  status: 'pending' | 'succeeded' | 'failed' | 'rejected' | 'timed_out';
  error: string | null;
}

/** What the device's product collects and why, with the owner's decisions (docs/binding.md, privacy). */
export interface DevicePrivacy {
  declared: boolean;
  senses: string[];
  purposes: { id: string; description: string; required: boolean; telemetry: string[]; granted: boolean }[];
  /** The reading names stored now; null: everything (the product declares nothing). */
  collected: string[] | null;
}

/** What a product senses and collects, and why: read before claiming it (`GET my/products/:id/privacy`). */
export interface ProductPrivacy {
  productId: string;
  declared: boolean;
  senses: string[];
  purposes: { id: string; description: string; required: boolean; telemetry: string[] }[];
}

/** The commands the app offers (the platform's binding.consumerCommands decides; default `identify`). */
export const COMMANDS = [{ name: 'identify', label: 'Identify (blink its light)' }];

export const ROLE_LABEL: Record<DeviceRole, string> = {
  owner: 'Owner',
  member: 'Shared with me: can use',
  guest: 'Shared with me: can view',
};

const device = (id: string) => `/my/devices/${encodeURIComponent(id)}`;

export const my = {
  devices: async () => (await api<{ devices: MyDevice[] }>('GET', '/my/devices')).devices,
  device: (id: string) => api<MyDevice>('GET', device(id)),
  presence: (id: string) => api<Presence>('GET', `${device(id)}/presence`),
  state: (id: string) => api<Shadow>('GET', `${device(id)}/state`),
  /** Merges `patch` into the desired state at `version` (refused with 409 if it moved on meanwhile). */
  setDesired: (id: string, patch: Record<string, unknown>, version: number) =>
    api<Shadow>('PATCH', `${device(id)}/state/desired`, { state: patch, version }),
  /** One page of the readings from `from` to `to`, oldest first. */
  readings: (id: string, from: string, to: string, cursor?: string) =>
    api<{ readings: Reading[]; nextCursor: string | null }>(
      'GET',
      `${device(id)}/telemetry?${new URLSearchParams({ from, to, limit: '500', ...(cursor ? { cursor } : {}) }).toString()}`,
    ),
  latest: (id: string) => api<Latest>('GET', `${device(id)}/telemetry/latest`),
  claim: (code: string) => api<MyDevice>('POST', '/my/devices/claim', { code }),
  rename: (id: string, label: string | null) => api<MyDevice>('PATCH', device(id), { label }),
  command: (id: string, name: string) => api<Command>('POST', `${device(id)}/commands`, { name }),
  commandOutcome: (id: string, commandId: string) =>
    api<Command>('GET', `${device(id)}/commands/${encodeURIComponent(commandId)}?waitMs=5000`),
  shares: (id: string) => api<{ members: Member[]; invitations: Invitation[] }>('GET', `${device(id)}/shares`),
  share: (id: string, email: string, role: 'member' | 'guest') => api<Invitation>('POST', `${device(id)}/shares`, { email, role }),
  revokeShare: (id: string, userId: string) => api('DELETE', `${device(id)}/shares/${encodeURIComponent(userId)}`),
  cancelInvitation: (id: string, invitationId: string) => api('DELETE', `${device(id)}/invitations/${encodeURIComponent(invitationId)}`),
  transfer: (id: string, email: string) => api<Invitation>('POST', `${device(id)}/transfer`, { email }),
  unbind: (id: string) => api('DELETE', device(id)),
  leave: (id: string) => api('POST', `${device(id)}/leave`),
  productPrivacy: (productId: string) => api<ProductPrivacy>('GET', `/my/products/${encodeURIComponent(productId)}/privacy`),
  privacy: (id: string) => api<DevicePrivacy>('GET', `${device(id)}/privacy`),
  setConsents: (id: string, decisions: Record<string, boolean>) => api<DevicePrivacy>('PUT', `${device(id)}/consents`, decisions),
  invitations: async () => (await api<{ invitations: Invitation[] }>('GET', '/my/invitations')).invitations,
  accept: (invitationId: string) => api<MyDevice>('POST', `/my/invitations/${encodeURIComponent(invitationId)}/accept`),
  decline: (invitationId: string) => api('DELETE', `/my/invitations/${encodeURIComponent(invitationId)}`),
  /** The live stream's URL (server-sent events; the session cookie goes with it, same origin). */
  liveUrl: (id: string) => `/api/v1${device(id)}/live`,
};

/** The device's name as I see it: my label, else its serial number. */
export const nameOf = (d: MyDevice) => d.label ?? d.serial;
