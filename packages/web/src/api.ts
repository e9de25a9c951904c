/**
 * The console's only door to the platform: the public API under /api/v1 with the session cookie
 * (HttpOnly, set by the server) and the CSRF token the API hands back at sign-in, kept in memory
 * only (never localStorage or sessionStorage): a reload asks GET /auth/session for it again.
 * The shapes the server defines for both sides (roles, permissions, audit entries, the device,
 * certificate, product, shadow, command, presence, latest values, telemetry aggregate, fleet
 * summary and ingest rate, rollout, release, finding, assessment run, user, session, invitation,
 * organization, API key and passkey views, a sign-in step's answer, the current session, a TOTP
 * enrolment and the passkey policy) come from @bulwark/protocol; the permissions are those an API key may
 * carry (a key gets only those its creator's role has).
 */
export { DEVICE_STATUSES, OPERATOR_ROLES, PERMISSIONS, roleHolds, ROLLOUT_DEVICE_STATES, SEVERITIES } from '@bulwark/protocol';
export type {
  ApiKeyView,
  AuditEntry,
  AuditOutcome,
  CommandDeclaration,
  CommandStatus,
  CommandView,
  DeviceCertificateView,
  DeviceStatus,
  DeviceView,
  FindingView,
  FleetSummaryView,
  IngestRateView,
  LatestView,
  MfaFactor,
  OperatorInvitationView,
  OrganizationView,
  OperatorRole,
  PasskeyPolicy,
  PasskeyView,
  Permission,
  PresenceView,
  ProductView,
  ReleaseView,
  RolloutDetailView,
  RolloutDeviceState,
  RolloutDeviceView,
  RolloutStatus,
  RolloutView,
  RotatedCredentialsView,
  RunView,
  SessionAnswer,
  SessionScope,
  SessionView,
  ShadowView,
  SignInAnswer,
  SignInStatus,
  TelemetryAggregateView,
  TotpEnrolment,
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
  return request<T>(method, `/api/v1${path}`, body, 'follow', (parsed, status) => {
    const error = (parsed as ApiErrorBody | null)?.error;
    return new ApiError(status, error?.code ?? 'http.error', error?.message ?? `The server answered ${status}`);
  });
}

/**
 * The platform's OAuth endpoints (under /oauth, not /api/v1), asked for JSON, with the session
 * cookie and its CSRF token like api(): their errors are RFC 6749's `{ error, error_description, code }`.
 */
export async function oauthApi<T>(method: Method, path: string, body?: unknown): Promise<T> {
  // A redirect here would be the browser following a code to the app by script: refused, never followed.
  return request<T>(method, `/oauth${path}`, body, 'error', (parsed, status) => {
    const error = parsed as { error?: string; error_description?: string; code?: string } | null;
    return new ApiError(status, error?.code ?? error?.error ?? 'http.error', error?.error_description ?? `The server answered ${status}`);
  });
}

async function request<T>(
  method: Method,
  url: string,
  body: unknown,
  redirect: RequestRedirect,
  failure: (parsed: unknown, status: number) => ApiError,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    redirect,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) throw failure(parsed, response.status);
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
