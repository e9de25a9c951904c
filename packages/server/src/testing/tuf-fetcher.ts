/**
 * A tuf-js fetcher over HTTPS that trusts a given CA (the deployment's), so a TUF client can refresh
 * from a Bulwark server whose certificate the system store does not know. Non-200 answers become
 * tuf-js's DownloadHTTPError, which its updater reads (a 404 on the next root ends the root walk).
 */
import https from 'node:https';
import { Readable } from 'node:stream';
import { BaseFetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

export class CaTrustingFetcher extends BaseFetcher {
  private readonly agent: https.Agent;

  constructor(ca: string) {
    super();
    this.agent = new https.Agent({ ca, keepAlive: false });
  }

  override fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    return new Promise((resolve, reject) => {
      https
        .get(url, { agent: this.agent, timeout: 10_000 }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new DownloadHTTPError(`GET ${url} answered ${res.statusCode}`, res.statusCode ?? 0));
            return;
          }
          resolve(Readable.toWeb(res) as unknown as ReadableStream<Uint8Array<ArrayBuffer>>);
        })
        .on('error', reject);
    });
  }
}
