/**
 * A small HTTPS client for tests: trusts the deployment CA (real TLS, real certificate checks),
 * keeps a cookie jar when asked, and returns status, headers and parsed JSON.
 */
import https from 'node:https';

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
  delete<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, options);
  }

  close(): void {
    this.agent.destroy();
  }
}
