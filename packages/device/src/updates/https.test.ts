import assert from 'node:assert/strict';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { makeTestPki, type TestPki } from '../testing/update-pki.js';
import { httpsGetBytes, type TlsIdentity } from './https.js';

describe("the agent's HTTPS connection", () => {
  let pki: TestPki;
  let server: https.Server;
  let base = '';
  let identity: TlsIdentity;
  const sockets: TLSSocket[] = [];
  let endlessSocket: TLSSocket | null = null;

  before(async () => {
    pki = await makeTestPki();
    identity = { ca: pki.ca, ...(await pki.device('dev-https')) };
    server = https.createServer({ ca: pki.ca, cert: pki.server.cert, key: pki.server.key, requestCert: true }, (req, res) => {
      if (req.url === '/endless') {
        endlessSocket = req.socket as TLSSocket;
        // A refusal whose body never ends: the agent must not read it for ever to keep the connection.
        res.writeHead(404, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(16 * 1024, 0x20);
        const pump = () => {
          while (res.write(chunk));
        };
        res.on('drain', pump);
        pump();
        return;
      }
      const body = Buffer.from(req.url === '/missing' ? '{"error":{"code":"not_found"}}' : '{"ok":true}');
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
    server.on('secureConnection', (socket: TLSSocket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://localhost:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads a refusal to its end, so the next request goes on the same connection', async () => {
    const before = sockets.length;
    await assert.rejects(
      httpsGetBytes(`${base}/missing`, identity, 1024),
      (error) => error instanceof DownloadHTTPError && error.statusCode === 404,
    );
    assert.deepEqual(JSON.parse((await httpsGetBytes(`${base}/found`, identity, 1024)).toString()), { ok: true });
    await assert.rejects(httpsGetBytes(`${base}/missing`, identity, 1024), DownloadHTTPError);
    assert.equal(sockets.length - before, 1);
  });

  it('closes the connection rather than read a refusal past 64 KiB, and still refuses at once', async () => {
    const before = sockets.length;
    const started = Date.now();
    await assert.rejects(
      httpsGetBytes(`${base}/endless`, identity, 1024, 5_000),
      (error) => error instanceof DownloadHTTPError && error.statusCode === 404,
    );
    assert.ok(Date.now() - started < 4_000, 'the endless body was cut, not read until the timeout');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(endlessSocket?.destroyed, 'the connection of the endless refusal is closed');
    // The next request opens a new connection.
    assert.deepEqual(JSON.parse((await httpsGetBytes(`${base}/found`, identity, 1024)).toString()), { ok: true });
    assert.equal(sockets.length - before, 1);
  });
});
