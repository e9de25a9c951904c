/**
 * A small HTTPS client for tests: trusts the deployment CA (real TLS, real certificate checks),
 * keeps a cookie jar when asked, and returns status, headers and parsed JSON. `rawHttps` sends
 * bytes no well-behaved client would (malformed requests, pipelined requests) over real TLS.
 */
import https from 'node:https';
import tls from 'node:tls';

export interface HttpResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: unknown;
  /** Raw body (sent as is, with the given content type). */
  raw?: string | Buffer;
  token?: string;
}

export class HttpClient {
  private readonly agent: https.Agent;
  readonly cookies = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    ca: string,
    private readonly useCookies = false,
  ) {
    this.agent = new https.Agent({ ca, keepAlive: true, maxSockets: 64 });
  }

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    let payload: string | Buffer | undefined;
    if (options.raw !== undefined) payload = options.raw;
    else if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (this.useCookies && this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (this.useCookies) {
            for (const line of res.headers['set-cookie'] ?? []) {
              const [pair] = line.split(';');
              const [name, ...rest] = pair!.split('=');
              const value = rest.join('=');
              if (value && !/expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.set(name!.trim(), value);
              else this.cookies.delete(name!.trim());
            }
          }
          let body: any = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text) {
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
        });
      });
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, options);
  }
  post<T = any>(path: string, body?: unknown, options: RequestOptions = {}) {
    return this.request<T>('POST', path, { ...options, ...(body === undefined ? {} : { body }) });
  }
  patch<T = any>(path: string, body?: unknown, options: RequestOptions = {}) {
    return this.request<T>('PATCH', path, { ...options, ...(body === undefined ? {} : { body }) });
  }
  put<T = any>(path: string, body?: unknown, options: RequestOptions = {}) {
    return this.request<T>('PUT', path, { ...options, ...(body === undefined ? {} : { body }) });
  }
  delete<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, options);
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Writes `steps` on one TLS connection (bytes are written, `pauseMs` apart; a function is run in
 * between, e.g. to start a shutdown) and parses every HTTP response the server sends before it
 * closes the connection or `timeoutMs` passes.
 */
export async function rawHttps(
  port: number,
  ca: string,
  steps: Array<string | (() => Promise<unknown>)>,
  { pauseMs = 100, timeoutMs = 5000 } = {},
): Promise<HttpResponse[]> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    setTimeout(resolve, timeoutMs).unref();
  });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  for (const step of steps) {
    if (typeof step === 'function') await step();
    else socket.write(step);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  await ended;
  socket.destroy();
  return parseResponses(Buffer.concat(received));
}

function parseResponses(data: Buffer): HttpResponse[] {
  const responses: HttpResponse[] = [];
  let rest = data;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const text = rest.subarray(end + 4, end + 4 + length).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the text is the body
    }
    responses.push({ status: Number(statusLine!.split(' ')[1]), headers, body, text });
    rest = rest.subarray(end + 4 + length);
  }
  return responses;
}
