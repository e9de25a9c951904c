/**
 * HTTPS requests to the platform with the deployment root as the only trust anchor and, when
 * given, a client certificate (its key in PEM or on a PKCS#11 token). Error answers become PlatformError with the platform's code and
 * message (`{ "error": { "code", "message", "details" } }`).
 */
import https from 'node:https';
import type { ErrorBody } from '@bulwark/protocol';
import { PlatformError } from './errors.js';
import { clientTlsOptions, type DeviceKey } from './keys.js';

export interface HttpsOptions {
  method: 'GET' | 'POST' | 'PUT';
  ca: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Client certificate and key for the TLS handshake. */
  cert?: string;
  key?: DeviceKey;
  /** Reused connections (operator API calls); without one each request has its own connection. */
  agent?: https.Agent;
  timeoutMs?: number;
}

export interface HttpsAnswer {
  status: number;
  contentType: string;
  text: string;
}

/** Sends the request; resolves with any 2xx answer, rejects with PlatformError otherwise. */
export function httpsRequest(url: string, options: HttpsOptions): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method: options.method,
        ca: options.ca,
        headers: options.headers,
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 30_000,
        ...(options.cert && options.key ? clientTlsOptions(options.ca, options.cert, options.key) : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const answer = {
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          };
          if (answer.status >= 200 && answer.status < 300) resolve(answer);
          else reject(platformError(answer));
        });
      },
    );
    request.on('timeout', () =>
      request.destroy(
        new PlatformError(`No answer from ${new URL(url).origin} within ${options.timeoutMs ?? 30_000} ms`, 'http.timeout', 0),
      ),
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** Sends JSON and parses the JSON answer. */
export async function httpsJson<T>(url: string, options: Omit<HttpsOptions, 'body'> & { json?: unknown }): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  const answer = await httpsRequest(url, {
    ...options,
    headers,
    ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {}),
  });
  return JSON.parse(answer.text) as T;
}

function platformError(answer: HttpsAnswer): PlatformError {
  if (answer.contentType.includes('json')) {
    try {
      const { error } = JSON.parse(answer.text) as ErrorBody;
      if (error && typeof error.code === 'string') return new PlatformError(error.message, error.code, answer.status, error.details);
    } catch {
      // Not the platform's error body: fall through to the status.
    }
  }
  return new PlatformError(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`, `http.${answer.status}`, answer.status);
}
