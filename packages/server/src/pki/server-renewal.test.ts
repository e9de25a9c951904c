import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { DAY } from '../clock.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct } from '../testing/devices.js';
import { closed, connectDevice } from '../testing/mqtt.js';
import { Openssl } from '../testing/openssl.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { pkiPaths } from './ca.js';
import { ServerCertificateRenewal } from './server-renewal.js';

const sockets: TLSSocket[] = [];

/** A TLS connection to the port, open (ended after the test); what certificate the server presented. */
function open(port: number, ca: string | null): Promise<{ socket: TLSSocket; serial: string; notAfter: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...(ca ? { ca } : { rejectUnauthorized: false }) }, () => {
      const peer = socket.getPeerCertificate();
      resolve({ socket, serial: peer.serialNumber, notAfter: new Date(peer.valid_to).getTime() });
    });
    sockets.push(socket);
    socket.once('error', reject);
  });
}

const endSockets = () => sockets.splice(0).forEach((socket) => socket.destroy());

/** An HTTP/1.1 request over a TLS connection opened earlier; its status line. */
function statusOver(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        resolve(data.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

async function renewals(t: TestPlatform): Promise<Record<string, unknown>[]> {
  const { entries } = await t.platform.audit.query({ action: 'pki.server_certificate_renewed', limit: 10 });
  return entries.map((e) => e.details as Record<string, unknown>);
}

for (const engine of ENGINES) {
  describe(`server certificate renewal without a restart [${engine.engine}]`, { skip: engine.skip }, () => {
    it('renews the platform certificate near expiry on HTTPS and MQTTS; connections opened before keep working', async () => {
      const t = await startTestPlatform(engine);
      try {
        const org = await organizationIdOf(t.platform, t.org);
        const device = await provisionTestDevice(t.platform, org, await testProduct(t.platform, org), 'RENEW-1');
        const mqttPort = t.server.mqtt!.port;
        const httpsBefore = await open(t.server.port, t.ca);
        const mqttBefore = await open(mqttPort, t.ca);
        assert.equal(httpsBefore.serial, mqttBefore.serial);
        const client = await connectDevice(mqttPort, t.ca, device, device.id);

        // Far from expiry: nothing happens.
        assert.equal(await t.server.certificate.check(), 'unchanged');
        assert.equal((await open(t.server.port, t.ca)).serial, httpsBefore.serial);

        // 29 days before expiry (window: 30 days).
        t.clock.set(httpsBefore.notAfter - 29 * DAY);
        assert.equal(await t.server.certificate.check(), 'renewed');

        // The platform clock is 368 days ahead of the real one, so the new certificate is not yet valid for a
        // client on real time: its chain is checked by hand against the server issuing CA instead.
        const serverCa = new X509Certificate(readFileSync(pkiPaths(t.config.dataDir).serverCaCert, 'utf8'));
        for (const port of [t.server.port, mqttPort]) {
          const after = await open(port, null);
          const presented = new X509Certificate(after.socket.getPeerCertificate().raw);
          assert.ok(presented.checkIssued(serverCa) && presented.verify(serverCa.publicKey), `port ${port}: issued by the server CA`);
          assert.ok(presented.checkHost('localhost'), `port ${port}: same name`);
          assert.notEqual(after.serial, httpsBefore.serial, `port ${port} presents the new certificate`);
          assert.ok(after.notAfter > httpsBefore.notAfter + 300 * DAY, `port ${port}: new notAfter`);
        }
        // Same names as before, and written to the data directory (a restart serves it too).
        const renewed = new X509Certificate(readFileSync(pkiPaths(t.config.dataDir).serverCert, 'utf8'));
        assert.equal(renewed.serialNumber.toLowerCase(), (await open(t.server.port, null)).serial.toLowerCase());
        assert.match(renewed.subject, /O=/);
        // Connections opened before the swap still work: an HTTP request, an MQTT round trip.
        assert.equal(await statusOver(httpsBefore.socket), 'HTTP/1.1 200 OK');
        await new Promise<void>((resolve, reject) =>
          client.publish(`d/${device.id}/telemetry`, '{"values":{"x":1}}', { qos: 1 }, (e) => (e ? reject(e) : resolve())),
        );
        assert.ok(client.connected);
        // The new certificate is far from expiry: the next check does nothing.
        assert.equal(await t.server.certificate.check(), 'unchanged');

        const audited = await renewals(t);
        assert.equal(audited.length, 1);
        assert.equal(audited[0]!.how, 'renewed');
        assert.equal(String(audited[0]!.previousSerial).toLowerCase(), httpsBefore.serial.toLowerCase());
        client.end(true);
        await closed(client);
      } finally {
        endSockets();
        await t.close();
      }
    });

    it('a process that only follows (a worker but the first) never issues, and picks up what the renewing one wrote', async () => {
      const t = await startTestPlatform(engine);
      try {
        const follower = new ServerCertificateRenewal(
          {
            dataDir: t.config.dataDir,
            box: t.platform.box,
            token: null,
            clock: t.clock,
            audit: t.platform.audit,
            files: null,
            renewDays: t.config.http.certificateRenewDays,
            renews: false,
            serverNames: [],
            log: { info: () => undefined, error: () => undefined },
          },
          t.server.certificate.tls,
        );
        const before = t.server.certificate.tls.cert;
        t.clock.set(new Date(new X509Certificate(before).validTo).getTime() - 29 * DAY);
        assert.equal(await follower.check(), 'unchanged');
        assert.equal(readFileSync(pkiPaths(t.config.dataDir).serverCert, 'utf8'), before, 'the follower wrote nothing');
        assert.equal(await t.server.certificate.check(), 'renewed');
        assert.equal(await follower.check(), 'reloaded');
        assert.equal(follower.tls.cert, t.server.certificate.tls.cert);
        const audited = await renewals(t);
        assert.deepEqual(audited.map((e) => e.how).sort(), ['data_directory', 'renewed'], 'one certificate issued, and followed');
      } finally {
        await t.close();
      }
    });

    it('follows tlsCertFile/tlsKeyFile replaced on disk and refuses a key that does not match', async () => {
      const ssl = new Openssl();
      const pair = async (name: string) => {
        await ssl.must([
          'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
          '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
          '-keyout', `${name}.key`, '-out', `${name}.pem`,
        ]); // prettier-ignore
        return { cert: ssl.read(`${name}.pem`), key: ssl.read(`${name}.key`) };
      };
      const [first, second, third] = [await pair('a'), await pair('b'), await pair('c')];
      const certFile = ssl.write('server.pem', first.cert);
      const keyFile = ssl.write('server.key', first.key);
      const t = await startTestPlatform(engine, { http: { port: 0, tlsCertFile: certFile, tlsKeyFile: keyFile } });
      const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
      try {
        const before = await open(t.server.port, null);
        assert.equal(before.serial.toLowerCase(), serialOf(first.cert));
        assert.equal(await t.server.certificate.check(), 'unchanged');

        // certbot-style renewal: both files replaced.
        ssl.write('server.pem', second.cert);
        ssl.write('server.key', second.key);
        assert.equal(await t.server.certificate.check(), 'reloaded');
        for (const port of [t.server.port, t.server.mqtt!.port]) {
          assert.equal((await open(port, null)).serial.toLowerCase(), serialOf(second.cert), `port ${port}`);
        }
        assert.equal(await statusOver(before.socket), 'HTTP/1.1 200 OK');

        // A certificate whose key is another one's: refused, the second pair stays.
        ssl.write('server.pem', third.cert);
        assert.equal(await t.server.certificate.check(), 'refused');
        ssl.write('server.key', 'not a key');
        assert.equal(await t.server.certificate.check(), 'refused');
        for (const port of [t.server.port, t.server.mqtt!.port]) {
          assert.equal((await open(port, null)).serial.toLowerCase(), serialOf(second.cert), `port ${port} kept the old pair`);
        }
        // The key arrives: the third pair is taken.
        ssl.write('server.key', third.key);
        assert.equal(await t.server.certificate.check(), 'reloaded');
        assert.equal((await open(t.server.port, null)).serial.toLowerCase(), serialOf(third.cert));

        const audited = await renewals(t);
        assert.deepEqual(
          audited.map((d) => [d.how, String(d.serial).toLowerCase()]),
          [
            ['file', serialOf(third.cert)],
            ['file', serialOf(second.cert)],
          ],
        );
      } finally {
        endSockets();
        await t.close();
        ssl.close();
      }
    });
  });
}
