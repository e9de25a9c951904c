/**
 * The console's only door to the platform: the public API under /api/v1 with the session cookie
 * (HttpOnly, set by the server) and the CSRF token the API hands back at sign-in, kept in memory
 * only (never localStorage or sessionStorage): a reload asks GET /auth/session for it again.
 * The shapes the server defines for both sides (roles, permissions, audit entries, the device,
 * certificate, shadow, command, rollout, user, session, API key and passkey views) come from
 * @bulwark/protocol; the permissions are those an API key may carry (a key gets only those its
 * creator's role has).
 */
import type { DeviceStatus, SessionScope, UserView } from '@bulwark/protocol';

export { DEVICE_STATUSES, OPERATOR_ROLES, PERMISSIONS, roleHolds, ROLLOUT_DEVICE_STATES } from '@bulwark/protocol';
export type {
  ApiKeyView,
  AuditEntry,
  AuditOutcome,
  CommandStatus,
  CommandView,
  DeviceCertificateView,
  DeviceStatus,
  DeviceView,
  OperatorRole,
  PasskeyView,
  Permission,
  RolloutDetailView,
  RolloutDeviceState,
  RolloutDeviceView,
  RolloutStatus,
  RolloutView,
  SessionScope,
  SessionView,
  ShadowView,
  UserView,
} from '@bulwark/protocol';

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** An answer other than 2xx, with the API's stable error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (parsed as ApiErrorBody | null)?.error;
    throw new ApiError(response.status, error?.code ?? 'http.error', error?.message ?? `The server answered ${response.status}`);
  }
  return parsed as T;
}

/** Query string from the set fields only. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

export type SignInStatus = 'ok' | 'mfa_required' | 'password_change_required' | 'mfa_enrollment_required' | 'passkey_enrollment_required';

export interface SignInAnswer {
  status: SignInStatus;
  /** At mfa_required: what completes the step (a code, a passkey). */
  mfaFactors?: ('totp' | 'passkey')[];
  csrfToken?: string;
  expiresAt: string;
  user: UserView;
}

export interface SessionAnswer {
  user: UserView;
  scope: SessionScope;
  expiresAt: string;
  csrfToken?: string;
}

export interface Product {
  id: string;
  name: string;
  /** The commands its devices take; null: none declared (any command name is sent). */
  commands?: CommandDeclaration[] | null;
}

export interface CommandDeclaration {
  name: string;
  description: string;
  params: { name: string; type: 'string' | 'number' | 'integer' | 'boolean'; required: boolean; description: string }[];
}

export interface BucketValue {
  count: number;
  avg?: number;
  min?: number;
  max?: number;
  last?: unknown;
  lastAt?: string;
}

export interface TelemetryAggregate {
  from: string;
  to: string;
  interval: string;
  intervalMs: number;
  buckets: { start: string; values: Record<string, BucketValue> }[];
}

export interface IngestRate {
  from: string;
  to: string;
  minutes: { start: string; readings: number }[];
}

export interface RotatedCredentials {
  deviceId: string;
  revoked: string[];
  token: string;
  expiresAt: string;
}

export interface FleetSummary {
  total: number;
  online: number;
  byStatus: { status: DeviceStatus; count: number }[];
  byProduct: { productId: string; count: number }[];
  byFirmware: { version: string | null; count: number }[];
}

export interface Presence {
  online: boolean;
  since: string | null;
  node: string | null;
  protocol: string | null;
}

export interface AssessmentRun {
  id: string;
  trigger: string;
  startedAt: string;
  durationMs: number;
  checks: string[];
  failures: { check: string; message: string }[];
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;

export interface Finding {
  id: string;
  check: string;
  resources: { type: string; id: string }[];
  moreResources: number;
  suppression: { reason: string; by: string; at: string; until: string } | null;
  severity: 'critical' | 'high' | 'medium' | 'low' | 'info';
  title: string;
  evidence: Record<string, unknown>;
  state: 'open' | 'resolved' | 'suppressed';
  firstSeenAt: string;
  lastSeenAt: string;
}

export interface Invitation {
  id: string;
  email: string;
  name: string;
  role: string;
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}

export interface Release {
  id: string;
  productId: string;
  version: string;
  notes: string;
  createdAt: string;
}
