/**
 * Authenticated calls to the platform's API on behalf of the signed-in consumer: the access
 * token from `AppAuth`, one retry after a refresh when the API answers 401 (a token revoked or
 * rotated early), and Bulwark's error body turned into `AppApiError` with its stable code.
 */
import type { AppAuth } from './auth.js';
import { AppApiError } from './errors.js';

export interface ApiOptions {
  baseUrl: string;
  auth: AppAuth;
  fetch?: typeof fetch;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export class ApiClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ApiOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Sends the request and returns its JSON answer (undefined for 204). */
  async json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const answer = await this.send(method, path, body);
    if (answer.status === 204) return undefined as T;
    return (await answer.json()) as T;
  }

  /** Sends the request with the access token; answers that are not 2xx become AppApiError. */
  async send(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let answer = await this.attempt(method, path, await this.options.auth.accessToken(), body, signal);
    if (answer.status === 401) {
      await answer.body?.cancel();
      answer = await this.attempt(method, path, await this.options.auth.refreshNow(), body, signal);
    }
    if (!answer.ok) throw await apiError(answer);
    return answer;
  }

  private attempt(method: Method, path: string, token: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    return this.fetch(new URL(path, this.options.baseUrl).toString(), init);
  }
}

async function apiError(answer: Response): Promise<AppApiError> {
  const text = await answer.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (error?.code) return new AppApiError(answer.status, error.code, error.message ?? error.code, error.details);
  } catch {
    // not Bulwark's error body: fall through
  }
  return new AppApiError(answer.status, 'http.error', `HTTP ${answer.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
}
