/**
 * The agent's HTTPS: every request to the platform trusts only the deployment root (`ca.pem`) and
 * presents the device certificate (mutual TLS), for the director and the image repository alike.
 * `TufFetcher` is tuf-js's fetcher on top of a GET (`mutualTls` for the platform; `publicGet`,
 * without a device certificate, only for the TUF conformance client); its HTTP errors are tuf-js's
 * own DownloadHTTPError so the updater can tell "no newer root" (404) from a failure.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { BaseFetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { DeviceIdentity } from '../identity.js';
import { clientTlsOptions } from '../keys.js';

export type TlsIdentity = Pick<DeviceIdentity, 'ca' | 'cert' | 'key'>;

export interface GetOptions {
  headers?: Record<string, string>;
  /** Gives up when the server does not answer (headers) within this time. */
  timeoutMs?: number;
}

/**
 * One keep-alive agent per identity: an update is two requests (the check's metadata, the image),
 * eight from a platform without the one-request check (director root probe and targets, TUF
 * refresh, image), and a fresh mutual-TLS handshake for each cost the platform most of its CPU
 * per device. Idle sockets are unreferenced by node's agent, so they never keep a process alive.
 * A connection goes back to the agent only once its answer was read to the end: an answer refused
 * on its status (the 404 that ends every root probe) is read to the end before the caller goes on
 * (`discard`), else the next request found the connection still busy and opened a second one.
 */
const agents = new WeakMap<TlsIdentity, https.Agent>();

function agentFor(tls: TlsIdentity): https.Agent {
  let agent = agents.get(tls);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, maxSockets: 2, ...clientTlsOptions(tls.ca, tls.cert, tls.key) });
    agents.set(tls, agent);
  }
  return agent;
}

/** A GET that resolves with the response (any status) once its headers arrived. */
export type HttpGet = (url: string, options?: GetOptions) => Promise<IncomingMessage>;

/** GETs from the platform over mutual TLS with the device's identity. */
export const mutualTls =
  (tls: TlsIdentity): HttpGet =>
  (url, options) =>
    httpsGet(url, tls, options);

/**
 * GETs without a client certificate (http:, or https: trusting `ca` when given, else the system's
 * CAs): only for the TUF conformance client, whose test repository is a plain public one. Trust
 * comes from the signed metadata alone, as TUF intends; the agent itself always uses `mutualTls`.
 */
export const publicGet =
  (ca?: string): HttpGet =>
  (url, options) =>
    url.startsWith('https:') ? send(url, options, https.request, ca ? { ca } : {}) : send(url, options, http.request, {});

/** Sends a GET and resolves with the response (any status) once its headers arrived. */
export function httpsGet(url: string, tls: TlsIdentity, options: GetOptions = {}): Promise<IncomingMessage> {
  return send(url, options, https.request, { ...clientTlsOptions(tls.ca, tls.cert, tls.key), agent: agentFor(tls) });
}

function send(
  url: string,
  options: GetOptions = {},
  request: typeof https.request,
  transport: https.RequestOptions,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', ...transport, headers: options.headers });
    const timer = setTimeout(
      () => req.destroy(new Error(`No answer from ${new URL(url).origin} within ${options.timeoutMs ?? 30_000} ms`)),
      options.timeoutMs ?? 30_000,
    );
    req.on('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

/** The most of a refused answer's body read so that its connection can serve the next request; past it the connection is closed. */
const MAX_DISCARDED_BYTES = 64 * 1024;

/**
 * Reads a refused answer's body to its end (the platform's error bodies are small JSON), so that
 * the keep-alive connection is free for the next request when this resolves; a body past
 * MAX_DISCARDED_BYTES, or one not over within `timeoutMs`, closes the connection instead. Never rejects.
 */
export function discard(res: IncomingMessage, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve) => {
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => res.destroy(), timeoutMs);
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DISCARDED_BYTES) res.destroy();
    });
    res.once('end', done);
    res.once('close', done);
    res.once('error', done);
  });
}

/** GETs a small document whole; non-2xx answers become DownloadHTTPError. */
export async function httpsGetBytes(url: string, tls: TlsIdentity, maxLength: number, timeoutMs?: number): Promise<Buffer> {
  const res = await httpsGet(url, tls, { timeoutMs });
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
    await discard(res, timeoutMs);
    throw new DownloadHTTPError(`GET ${url} answered ${res.statusCode}`, res.statusCode ?? 0);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxLength) {
      res.destroy();
      throw new Error(`GET ${url}: the answer exceeds ${maxLength} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * tuf-js's fetcher over the agent's GET (mutual TLS with the deployment root pinned, on the device).
 * Files already received in the check's one answer (UPDATE_METADATA_PATH) are served from it, each
 * once, and a root past the latest version that answer named is "not found" without asking; tuf-js
 * verifies them as it verifies what it fetches. Anything else is fetched.
 */
export class TufFetcher extends BaseFetcher {
  /** URLs whose transfer failed (network or HTTP status) since the last reset. */
  failed: string[] = [];
  private readonly received = new Map<string, Buffer>();
  private latestRoot: { prefix: string; version: number } | null = null;

  constructor(
    private readonly get: HttpGet,
    private readonly timeoutMs = 30_000,
  ) {
    super();
  }

  /** Files by URL from the check's answer, and the latest root version it named under `rootPrefix` (`…/metadata/`). */
  preload(files: Map<string, Buffer>, rootPrefix: string, latestRoot: number): void {
    for (const [url, bytes] of files) this.received.set(url, bytes);
    this.latestRoot = { prefix: rootPrefix, version: latestRoot };
  }

  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const received = this.received.get(url);
    if (received) {
      this.received.delete(url);
      return Readable.toWeb(Readable.from([received])) as ReadableStream<Uint8Array<ArrayBuffer>>;
    }
    if (this.latestRoot && url.startsWith(this.latestRoot.prefix)) {
      const root = /^([1-9][0-9]*)\.root\.json$/.exec(url.slice(this.latestRoot.prefix.length));
      if (root && Number(root[1]) > this.latestRoot.version) {
        this.failed.push(url);
        throw new DownloadHTTPError(`${url}: the platform's latest root is version ${this.latestRoot.version}`, 404);
      }
    }
    let res: IncomingMessage;
    try {
      res = await this.get(url, { timeoutMs: this.timeoutMs });
    } catch (error) {
      this.failed.push(url);
      throw error;
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      await discard(res, this.timeoutMs);
      this.failed.push(url);
      throw new DownloadHTTPError(`GET ${url} answered ${status}`, status);
    }
    const body = Readable.toWeb(res) as ReadableStream<Uint8Array<ArrayBuffer>>;
    res.on('error', () => this.failed.push(url));
    return body;
  }
}
