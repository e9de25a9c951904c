/**
 * A WHATWG fetch over node:https that trusts one CA (the test deployment's), for running the SDK
 * against a real platform in tests: Node's global fetch takes no CA. Bodies stream (live state),
 * redirects are not followed (the test reads the authorization redirect), `close` ends its sockets.
 */
import https from 'node:https';
import { Readable } from 'node:stream';

export function fetchTrusting(ca: string): { fetch: typeof fetch; close(): void } {
  const agent = new https.Agent({ ca, keepAlive: true });
  const fetchImpl = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const method = init.method ?? 'GET';
      const request = https.request(url, { method, headers: init.headers as Record<string, string>, agent }, (res) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers))
          if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
        const status = res.statusCode ?? 0;
        const empty = status === 204 || status === 304 || method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers }));
      });
      request.on('error', reject);
      init.signal?.addEventListener('abort', () => request.destroy(new Error('aborted')), { once: true });
      if (typeof init.body === 'string') request.write(init.body);
      request.end();
    });
  return { fetch: fetchImpl as typeof fetch, close: () => agent.destroy() };
}
