import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { connect as tlsConnect } from 'node:net';
import { connect as rawTls } from 'node:tls';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { MqttClient } from 'mqtt';
import { closed, connectDevice, eventually, granted, mosquittoClient, presenceOnline, settle } from '../../testing/mqtt.js';
import { cliActor } from '../../accounts/roles.js';
import { createToken, deviceResource } from '../../devices/sas.js';
import { ENGINES } from '../../testing/engines.js';
import type { TestDevice } from '../../testing/devices.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';

for (const engine of ENGINES) {
  describe(`MQTT broker over mutual TLS [${engine.engine}]`, { skip: engine.skip }, () => {
    const s = useBrokerSuite(engine, { watchIntervalMs: 100, maxPacketBytes: 64 * 1024, connectsPerSecond: 50 }, 'MQ');
    let serial = 0;

    /** Connects as the device (its key and certificate) and keeps the client to close after the suite; rejects unless CONNACK says yes. */
    async function connectAs(
      d: Pick<TestDevice, 'key' | 'cert'> | null,
      clientId: string,
      extra: Parameters<typeof connectDevice>[4] = {},
    ): Promise<MqttClient> {
      const client = await connectDevice(s.port, s.t.ca, d, clientId, extra);
      s.clients.push(client);
      return client;
    }

    it('stores QoS 1 telemetry of a device with its certificate, and acknowledges only what is committed', async () => {
      const d = await s.device();
      const client = await connectAs(d, d.id);
      await client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { temperature: 21.5, door: 'open' } }), { qos: 1 });
      // The PUBACK came back: the row is already there, no waiting.
      assert.equal(await s.stored(d.id), 1);
      await client.publishAsync(
        `d/${d.id}/telemetry`,
        JSON.stringify({
          batch: [
            { ts: s.t.clock.now() - 2000, values: { t: 1 } },
            { ts: s.t.clock.now() - 1000, values: { t: 2 } },
          ],
        }),
        { qos: 1 },
      );
      assert.equal(await s.stored(d.id), 3);
      const rows = await s.t.platform.telemetry.store.range(d.id, 0, Number.MAX_SAFE_INTEGER, 10);
      assert.deepEqual(JSON.parse(rows[0]!.data), { t: 1 });
      assert.equal((await presenceOnline(s.t.platform.db, d.id)).protocol, 'mqtts');
      await client.endAsync();
      await eventually(
        async () =>
          (
            await s.t.platform.db
              .selectFrom('device_presence')
              .select('connected_since')
              .where('device_id', '=', d.id)
              .executeTakeFirstOrThrow()
          ).connected_since === null,
        2000,
        'presence goes offline',
      );
    });

    it('answers a bad payload on the device’s error topic, stores nothing, and keeps the connection', async () => {
      const d = await s.device();
      const client = await connectAs(d, d.id);
      await client.subscribeAsync(`d/${d.id}/errors`, { qos: 0 });
      const errors: { code: string; message: string }[] = [];
      client.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString())));
      for (const bad of [
        'not json',
        '[]',
        '{"values":{}}',
        '{"values":{"t":"x"},"extra":1}',
        `{"ts":${Date.UTC(2199, 0)},"values":{"t":1}}`,
        '{"values":{"t":{"nested":1}}}',
      ]) {
        await client.publishAsync(`d/${d.id}/telemetry`, bad, { qos: 1 });
      }
      await eventually(() => errors.length === 6, 3000, 'six error replies');
      assert.deepEqual(
        errors.map((e) => e.code),
        ['payload.not_json', 'payload.invalid', 'payload.invalid', 'payload.invalid', 'payload.invalid_timestamp', 'payload.invalid'],
      );
      assert.equal(await s.stored(d.id), 0);
      assert.equal(client.connected, true);
      await client.publishAsync(`d/${d.id}/telemetry`, '{"values":{"ok":true}}', { qos: 1 });
      assert.equal(await s.stored(d.id), 1);
    });

    it('stores CBOR telemetry published on telemetry/cbor, and answers a payload that is not CBOR on the error topic', async () => {
      const d = await s.device();
      const client = await connectAs(d, d.id);
      await client.subscribeAsync(`d/${d.id}/errors`, { qos: 0 });
      const errors: { code: string }[] = [];
      client.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString())));
      // {"values":{"t":21.5}} in CBOR, 21.5 as a half-precision float, written byte by byte.
      await client.publishAsync(`d/${d.id}/telemetry/cbor`, Buffer.from('a16676616c756573a16174f94d60', 'hex'), { qos: 1 });
      assert.equal(await s.stored(d.id), 1);
      const rows = await s.t.platform.telemetry.store.range(d.id, 0, Number.MAX_SAFE_INTEGER, 10);
      assert.deepEqual(JSON.parse(rows[0]!.data), { t: 21.5 });
      await client.publishAsync(`d/${d.id}/telemetry/cbor`, '{"values":{"t":1}}', { qos: 1 });
      await eventually(() => errors.length === 1, 3000, 'error reply');
      assert.equal(errors[0]!.code, 'payload.not_cbor');
      assert.equal(await s.stored(d.id), 1);
    });

    it('attack: publishing on another device’s topic is refused and the connection dropped; nothing lands', async () => {
      const victim = await s.device();
      const attacker = await s.device();
      const client = await connectAs(attacker, attacker.id);
      const gone = closed(client);
      client.publish(`d/${victim.id}/telemetry`, '{"values":{"spoofed":1}}', { qos: 1 });
      await gone;
      assert.equal(await s.stored(victim.id), 0);
      assert.equal(await s.stored(attacker.id), 0);
    });

    it('attack: #, $SYS, other devices’ topics and shared subscriptions are refused (SUBACK 0x80)', async () => {
      const d = await s.device();
      const other = await s.device();
      const client = await connectAs(d, d.id);
      assert.deepEqual(
        await granted(client, [
          '#',
          '$SYS/#',
          'd/+/telemetry',
          `d/${other.id}/commands/+`,
          `$share/g/d/${other.id}/#`,
          'd/#',
          `d/${d.id}/commands/+`,
        ]),
        [128, 128, 128, 128, 128, 128, 1],
      );
      // The refused subscriptions deliver nothing: another device's telemetry does not reach us.
      const received: string[] = [];
      client.on('message', (topic) => received.push(topic));
      const otherClient = await connectAs(other, other.id);
      await otherClient.publishAsync(`d/${other.id}/telemetry`, '{"values":{"x":1}}', { qos: 1 });
      await s.t.server.mqtt!.publishToDevice(d.id, 'commands/c1', { name: 'reboot' });
      await eventually(() => received.length >= 1, 2000, 'own command delivered');
      await settle(200);
      assert.deepEqual(received, [`d/${d.id}/commands/c1`]);
    });

    it('attack: a client ID other than the certificate’s device ID is refused at CONNECT', async () => {
      const d = await s.device();
      const other = await s.device();
      await assert.rejects(connectAs(d, other.id), /Identifier rejected|client ID/i);
      await assert.rejects(connectAs(d, `${d.id}-2`), /Identifier rejected|client ID/i);
    });

    it('attack: no certificate and no token, or a certificate from another CA naming the device, is refused', async () => {
      const d = await s.device();
      await assert.rejects(connectAs(null, d.id), /Not authorized|Bad username/i);
      // A self-signed certificate with the device's ID as CN and SAN: the TLS layer lets it through
      // (client certificates are optional there), the broker refuses it.
      const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const crypto = globalThis.crypto;
      const pair = {
        privateKey: await crypto.subtle.importKey(
          'pkcs8',
          keys.privateKey.export({ format: 'der', type: 'pkcs8' }),
          { name: 'ECDSA', namedCurve: 'P-256' },
          true,
          ['sign'],
        ),
        publicKey: await crypto.subtle.importKey(
          'spki',
          keys.publicKey.export({ format: 'der', type: 'spki' }),
          { name: 'ECDSA', namedCurve: 'P-256' },
          true,
          ['verify'],
        ),
      };
      const forged = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: d.certSerial,
        name: `CN=${d.id}`,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        keys: pair,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:bulwark:device:${d.id}` }])],
      });
      await assert.rejects(
        connectAs({ key: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: forged.toString('pem') }, d.id),
        /Not authorized|closed/i,
      );
    });

    it('attack: a revoked certificate loses its live session within a second and cannot connect again', async () => {
      const d = await s.device();
      const client = await connectAs(d, d.id);
      const gone = closed(client);
      const started = Date.now();
      await s.t.platform.pki.revoke({ organizationId: s.org, serial: d.certSerial, reason: 'keyCompromise' }, { type: 'cli', id: 'test' });
      await gone;
      assert.ok(Date.now() - started < 1000, `dropped after ${Date.now() - started} ms`);
      await assert.rejects(connectAs(d, d.id), /Not authorized/i);
    });

    it('disabling drops the session and refuses the next connect; quarantine leaves only the update topics', async () => {
      const d = await s.device();
      const actor = cliActor(s.org, 'test');
      let client = await connectAs(d, d.id);
      let gone = closed(client);
      await s.t.platform.devices.service.transition(actor, d.id, 'quarantine', 'test');
      await gone;
      client = await connectAs(d, d.id);
      assert.deepEqual(await granted(client, [`d/${d.id}/updates/#`, `d/${d.id}/commands/+`]), [1, 128]);
      gone = closed(client);
      client.publish(`d/${d.id}/telemetry`, '{"values":{"x":1}}', { qos: 1 });
      await gone;
      assert.equal(await s.stored(d.id), 0);

      await s.t.platform.devices.service.transition(actor, d.id, 'activate');
      client = await connectAs(d, d.id);
      gone = closed(client);
      await s.t.platform.devices.service.transition(actor, d.id, 'disable');
      await gone;
      await assert.rejects(connectAs(d, d.id), /Not authorized/i);
    });

    it('attack: an oversized packet and a malformed one close that connection; the broker keeps serving', async () => {
      const d = await s.device();
      const client = await connectAs(d, d.id);
      const gone = closed(client);
      client.publish(`d/${d.id}/telemetry`, Buffer.alloc(100 * 1024, 0x41), { qos: 0 });
      await gone;
      const before = s.t.server.mqtt!.stats.oversized;
      assert.ok(before >= 1);

      // Garbage where a CONNECT belongs, over TLS.
      const garbage = rawTls({ host: '127.0.0.1', port: s.port, ca: s.t.ca, servername: 'localhost', key: d.key, cert: d.cert });
      await new Promise<void>((resolve) => garbage.once('secureConnect', () => resolve()));
      const ended = new Promise<void>((resolve) => garbage.once('close', () => resolve()));
      garbage.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 0x4d]));
      garbage.on('error', () => undefined);
      await ended;

      const again = await connectAs(d, d.id);
      await again.publishAsync(`d/${d.id}/telemetry`, '{"values":{"after":1}}', { qos: 1 });
      assert.equal(await s.stored(d.id), 1);
    });

    it('attack: a connection flood is cut at the TCP accept, before any TLS work, and devices still connect after it', async () => {
      const sockets = Array.from({ length: 600 }, () => {
        const socket = tlsConnect({ host: '127.0.0.1', port: s.port });
        socket.on('error', () => undefined);
        return socket;
      });
      // Under CPU load the 600 connects take longer to arrive: wait for the limiter to act rather than a fixed time.
      await eventually(() => s.t.server.mqtt!.stats.connectionsRefused > 0, 10_000, 'some connections refused');
      for (const socket of sockets) socket.destroy();
      const d = await s.device();
      // Connects still in the kernel's backlog may spend the allowance after the destroy: wait for it to refill.
      let client: MqttClient | null = null;
      await eventually(
        async () => {
          client = await connectAs(d, d.id).catch(() => null);
          return client?.connected === true;
        },
        15_000,
        'a device connects after the flood',
      );
      await settle(1100);
    });

    it('mosquitto_pub (Debian mosquitto-s.clients) with a device certificate publishes telemetry that lands, and is refused on another device’s topic', async () => {
      const d = await s.device();
      const other = await s.device();
      s.ssl.write('dev.pem', d.cert);
      s.ssl.write('dev.key', d.key);
      const pub = (topic: string) =>
        mosquittoClient('mosquitto_pub', { port: s.port, dir: s.ssl.dir, name: 'dev', deviceId: d.id }, [
          '-t',
          topic,
          '-m',
          '{"values":{"from":"mosquitto_pub"}}',
        ]);
      const ok = await pub(`d/${d.id}/telemetry`);
      assert.equal(ok.code, 0, ok.output);
      assert.equal(await s.stored(d.id), 1);
      await pub(`d/${other.id}/telemetry`);
      assert.equal(await s.stored(other.id), 0);
      assert.ok(s.t.server.mqtt!.stats.aclDenied > 0);
    });

    it('mosquitto_sub with a device certificate receives its own command, and is refused another device’s commands and #', async () => {
      const d = await s.device();
      const other = await s.device();
      s.ssl.write('sub.pem', d.cert);
      s.ssl.write('sub.key', d.key);
      const sub = (filter: string, extra: string[]) =>
        mosquittoClient('mosquitto_sub', { port: s.port, dir: s.ssl.dir, name: 'sub', deviceId: d.id }, ['-t', filter, ...extra]);
      // Its own commands: mosquitto_sub waits for one message, which the platform sends once it is subscribed.
      const own = sub(`d/${d.id}/commands/+`, ['-C', '1', '-W', '10', '-v']);
      // Its SUBSCRIBE follows the CONNACK by a moment: send until it has one (it exits on the first).
      let done = false;
      void own.then(() => (done = true));
      while (!done) {
        await s.t.server.mqtt!.publishToDevice(d.id, 'commands/c-sub', { name: 'blink' });
        await settle(250);
      }
      const received = await own;
      assert.equal(received.code, 0, received.output);
      assert.match(received.output, new RegExp(`^d/${d.id}/commands/c-sub \\{"name":"blink"\\}`));
      // Another device's commands, and everything: the SUBACK refuses them (mosquitto_sub says so and exits).
      for (const filter of [`d/${other.id}/commands/+`, '#']) {
        const refused = await sub(filter, ['-E']);
        assert.match(refused.output, /denied/i, filter);
      }
    });

    it('presence follows the newest session: a takeover by a second connection, and a reconnect right after a drop, leave the device online', async () => {
      const d = await s.device();
      const presence = async () => (await s.t.platform.telemetry.store.presence(d.id))?.connected_since ?? null;
      const first = await connectAs(d, d.id);
      const firstSince = (await presenceOnline(s.t.platform.db, d.id)).connected_since;
      // Aedes ends the first connection when the same client ID connects again.
      const firstGone = closed(first);
      s.t.clock.advance(10);
      await connectAs(d, d.id);
      await firstGone;
      await eventually(async () => ((await presence()) ?? 0) > Number(firstSince), 2000, 'the second session recorded');
      await settle(200); // the first session's end has been handled by now: it must not take the device offline
      assert.notEqual(await presence(), null, 'a takeover left the device offline');
      // Drop and reconnect at once: the old session's end and the new one's start are written in that order.
      for (let i = 0; i < 5; i++) {
        const client = s.clients.at(-1)!;
        const gone = closed(client);
        client.stream.destroy();
        await gone;
        s.t.clock.advance(10);
        await connectAs(d, d.id);
      }
      await settle(200);
      assert.notEqual(await presence(), null, 'a quick reconnect left the device offline');
    });

    it('a symmetric-key device logs in with its ID and a short-lived token, and is dropped when the token expires', async () => {
      const actor = cliActor(s.org, 'test');
      const registered = await s.t.platform.devices.service.register(actor, { serial: `SYM-${++serial}`, productId: s.product });
      const { key } = await s.t.platform.devices.symmetricKeys.issueKey(actor, registered.id);
      const nowSeconds = Math.floor(s.t.clock.now() / 1000);
      const started = Date.now();
      const client = await connectAs(null, registered.id, {
        username: registered.id,
        password: createToken(key, deviceResource(registered.id), nowSeconds + 2),
      });
      const gone = closed(client, 10_000);
      await client.publishAsync(`d/${registered.id}/telemetry`, '{"values":{"battery":3.1}}', { qos: 1 });
      assert.equal(await s.stored(registered.id), 1);
      assert.equal((await presenceOnline(s.t.platform.db, registered.id)).protocol, 'mqtts');
      await gone;
      assert.ok(Date.now() - started < 3500, 'dropped at token expiry');
    });

    it('attack: an expired symmetric token, one forged with a wrong key, and one for another device are refused at CONNECT', async () => {
      const actor = cliActor(s.org, 'test');
      const a = await s.t.platform.devices.service.register(actor, { serial: `SYM-${++serial}`, productId: s.product });
      const b = await s.t.platform.devices.service.register(actor, { serial: `SYM-${++serial}`, productId: s.product });
      const { key } = await s.t.platform.devices.symmetricKeys.issueKey(actor, a.id);
      await s.t.platform.devices.symmetricKeys.issueKey(actor, b.id);
      const nowSeconds = Math.floor(s.t.clock.now() / 1000);
      const login = (id: string, token: string) => connectAs(null, id, { username: id, password: token });
      await assert.rejects(login(a.id, createToken(key, deviceResource(a.id), nowSeconds - 1)), /Not authorized|Bad username/i);
      await assert.rejects(
        login(a.id, createToken(Buffer.alloc(32, 7), deviceResource(a.id), nowSeconds + 600)),
        /Not authorized|Bad username/i,
      );
      await assert.rejects(login(b.id, createToken(key, deviceResource(a.id), nowSeconds + 600)), /Not authorized|Bad username/i);
      await assert.rejects(login(b.id, createToken(key, deviceResource(b.id), nowSeconds + 600)), /Not authorized|Bad username/i);
      // The good token works, so the refusals above were about the token, not the setup.
      const ok = await login(a.id, createToken(key, deviceResource(a.id), nowSeconds + 600));
      assert.equal(ok.connected, true);
      assert.ok(s.t.server.mqtt!.stats.authFailures >= 4);
    });
  });
}
