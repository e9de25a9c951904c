/**
 * MQTT 5 clients against the gateway: the same identity-bound rules as MQTT 3.1.1, told in reason
 * codes (CONNACK, PUBACK, SUBACK, DISCONNECT), the limits announced in the CONNACK, and commands
 * carrying a Response Topic and Correlation Data. Protocol behaviour, not storage: SQLite only
 * (broker.test.ts runs the shared paths on both engines).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type IClientOptions, type IConnackPacket, type IDisconnectPacket, type MqttClient } from 'mqtt';
import { cliActor } from '../../accounts/roles.js';
import { createToken, deviceResource } from '../../devices/sas.js';
import { ENGINES } from '../../testing/engines.js';
import { granted, mosquittoClient, presenceOnline } from '../../testing/mqtt.js';
import type { TestDevice } from '../../testing/devices.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import { DISCONNECT_REASON } from './broker.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const MAX_PACKET = 64 * 1024;

interface V5Session {
  client: MqttClient;
  connack: IConnackPacket;
  /** Resolves with the server's DISCONNECT (null if the connection closed without one). */
  ended: Promise<IDisconnectPacket | null>;
}

describe('MQTT 5 clients [sqlite]', () => {
  const s = useBrokerSuite(sqlite, { watchIntervalMs: 100, maxPacketBytes: MAX_PACKET }, 'M5');
  let serial = 0;

  /** Connects with MQTT 5; resolves on a successful CONNACK, rejects with the reason code otherwise. */
  function connect5(d: Pick<TestDevice, 'key' | 'cert'> | null, clientId: string, extra: IClientOptions = {}): Promise<V5Session> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(`mqtts://localhost:${s.port}`, {
        clientId,
        ca: s.t.ca,
        ...(d ? { key: d.key, cert: d.cert } : {}),
        protocolVersion: 5,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...extra,
      });
      s.clients.push(client);
      let disconnect: IDisconnectPacket | null = null;
      client.on('disconnect', (packet) => (disconnect = packet));
      const ended = new Promise<IDisconnectPacket | null>((done) => client.once('close', () => done(disconnect)));
      client.once('connect', (connack) => resolve({ client, connack, ended }));
      client.once('error', (error) => {
        client.end(true);
        reject(error);
      });
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });
  }

  /** The reason code a refused CONNECT carried. */
  const refusedWith = (attempt: Promise<V5Session>) =>
    attempt.then(
      () => assert.fail('the connection was accepted'),
      (error: { code?: number }) => error.code,
    );

  it('a device with its certificate connects with MQTT 5; the CONNACK announces the limits; QoS 1 telemetry is stored before its PUBACK', async () => {
    const d = await s.device();
    const { client, connack } = await connect5(d, d.id, { properties: { sessionExpiryInterval: 0xffffffff } });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.maximumPacketSize, MAX_PACKET);
    // Topic aliases are off: the CONNACK announces none (0 is the default when absent).
    assert.equal(connack.properties?.topicAliasMaximum ?? 0, 0);
    // A session that "never expires" is clamped to a day.
    assert.equal(connack.properties?.sessionExpiryInterval, 24 * 3600);
    await client.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { temperature: 20.5 } }), { qos: 1 });
    assert.equal(await s.stored(d.id), 1);
    assert.notEqual((await presenceOnline(s.t.platform.db, d.id)).connected_since, null);
  });

  it('attack: publishing on another device’s topic gets PUBACK 0x87, then DISCONNECT 0x87; nothing lands', async () => {
    const victim = await s.device();
    const attacker = await s.device();
    const { client, ended } = await connect5(attacker, attacker.id);
    const ack = await client.publishAsync(`d/${victim.id}/telemetry`, '{"values":{"spoofed":1}}', { qos: 1 }).then(
      () => 0,
      (error: { code?: number }) => error.code,
    );
    assert.equal(ack, 0x87);
    const disconnect = await ended;
    assert.equal(disconnect?.reasonCode, DISCONNECT_REASON.notAuthorized);
    assert.equal(await s.stored(victim.id), 0);
    assert.equal(await s.stored(attacker.id), 0);
  });

  it('attack: #, $SYS and other devices’ topics get SUBACK 0x87, a shared subscription 0x9E; its own commands are granted', async () => {
    const d = await s.device();
    const other = await s.device();
    const { client, connack } = await connect5(d, d.id);
    assert.deepEqual(
      await granted(client, [
        '#',
        '$SYS/#',
        'd/+/telemetry',
        `d/${other.id}/commands/+`,
        `$share/g/d/${other.id}/#`,
        `d/${d.id}/commands/+`,
      ]),
      [0x87, 0x87, 0x87, 0x87, 0x9e, 1],
    );
    assert.equal(connack.properties?.sharedSubscriptionAvailable, false);
  });

  it('attack: a client ID other than the certificate’s device ID gets CONNACK 0x85; no credentials get 0x87', async () => {
    const d = await s.device();
    const other = await s.device();
    assert.equal(await refusedWith(connect5(d, other.id)), 0x85);
    assert.equal(await refusedWith(connect5(null, d.id)), 0x87);
  });

  it('attack: a topic alias (off on this broker) ends the session with DISCONNECT 0x94; nothing lands', async () => {
    const d = await s.device();
    const { client, ended } = await connect5(d, d.id);
    // mqtt.js refuses to send an alias the server did not grant: write the PUBLISH bytes ourselves.
    client.stream.write(publishWithTopicAlias(`d/${d.id}/telemetry`, 1, Buffer.from('{"values":{"a":1}}')));
    assert.equal((await ended)?.reasonCode, 0x94);
    assert.equal(await s.stored(d.id), 0);
  });

  it('attack: a revoked certificate’s live session ends with DISCONNECT 0x98 within a second, and it cannot connect again', async () => {
    const d = await s.device();
    const { ended } = await connect5(d, d.id);
    const started = Date.now();
    await s.t.platform.pki.revoke({ organizationId: s.org, serial: d.certSerial, reason: 'keyCompromise' }, { type: 'cli', id: 'test' });
    const disconnect = await ended;
    assert.ok(Date.now() - started < 1000, `dropped after ${Date.now() - started} ms`);
    assert.equal(disconnect?.reasonCode, DISCONNECT_REASON.administrativeAction);
    assert.equal(disconnect?.properties?.reasonString, 'certificate revoked');
    assert.equal(await refusedWith(connect5(d, d.id)), 0x87);
  });

  it('a symmetric-key device’s session ends with DISCONNECT 0xA0 when its token expires', async () => {
    const actor = cliActor(s.org, 'test');
    const registered = await s.t.platform.devices.service.register(actor, { serial: `M5-SYM-${++serial}`, productId: s.product });
    const { key } = await s.t.platform.devices.symmetricKeys.issueKey(actor, registered.id);
    const expires = Math.floor(s.t.clock.now() / 1000) + 2;
    const { client, ended } = await connect5(null, registered.id, {
      username: registered.id,
      password: createToken(key, deviceResource(registered.id), expires),
    });
    await client.publishAsync(`d/${registered.id}/telemetry`, '{"values":{"battery":3.0}}', { qos: 1 });
    assert.equal(await s.stored(registered.id), 1);
    const disconnect = await ended;
    assert.equal(disconnect?.reasonCode, DISCONNECT_REASON.maximumConnectTime);
    assert.equal(disconnect?.properties?.reasonString, 'credential expired');
  });

  it('each session is cut when its own credential expires: the sooner one first though it connected last, and a session taken over does not cut its successor', async () => {
    const actor = cliActor(s.org, 'test');
    const keyed = async () => {
      const registered = await s.t.platform.devices.service.register(actor, { serial: `M5-EXP-${++serial}`, productId: s.product });
      return { id: registered.id, key: (await s.t.platform.devices.symmetricKeys.issueKey(actor, registered.id)).key };
    };
    const [later, sooner, renewed] = [await keyed(), await keyed(), await keyed()];
    // Token expiry is in whole seconds of the platform's clock; the cut comes that long after the CONNECT, in real time.
    const clockSeconds = Math.floor(s.t.clock.now() / 1000);
    const cutIn = (seconds: number) => (clockSeconds + seconds) * 1000 - s.t.clock.now();
    const until = async (device: { id: string; key: string }, seconds: number) => {
      const asked = performance.now();
      const connected = await connect5(null, device.id, {
        username: device.id,
        password: createToken(device.key, deviceResource(device.id), clockSeconds + seconds),
      });
      // The node signed it in between the two: the cut is due in that window, `cutIn` later.
      const due = { from: asked + cutIn(seconds), to: performance.now() + cutIn(seconds) };
      return { ...connected, due, cut: connected.ended.then((packet) => ({ packet, at: performance.now() })) };
    };
    const last = await until(later, 4);
    const first = await until(sooner, 2);
    const replaced = await until(renewed, 2);
    const successor = await until(renewed, 60);
    for (const session of [first, last]) {
      // A missed cut fails here, 2 s after it was due, rather than waiting for the next one (or forever).
      const { packet, at } = await Promise.race([
        session.cut,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error('the session was not cut at its credential’s expiry')),
            session.due.to + 2000 - performance.now(),
          ),
        ),
      ]);
      assert.equal(packet?.reasonCode, DISCONNECT_REASON.maximumConnectTime);
      assert.equal(packet?.properties?.reasonString, 'credential expired');
      // Not before the credential expired, and not long after.
      assert.ok(at >= session.due.from, `cut ${Math.round(session.due.from - at)} ms early`);
      assert.ok(at <= session.due.to + 600, `cut ${Math.round(at - session.due.to)} ms late`);
    }
    assert.equal((await replaced.cut).packet?.reasonCode, 0x8e, 'session taken over');
    assert.ok(successor.client.connected, 'the session that took over was cut at its predecessor’s expiry');
    await successor.client.publishAsync(`d/${renewed.id}/telemetry`, '{"values":{"battery":3.2}}', { qos: 1 });
    assert.equal(await s.stored(renewed.id), 1);
  });

  it('a command reaches an MQTT 5 device with its Response Topic and Correlation Data; answering there completes it', async () => {
    const d = await s.device();
    const { client } = await connect5(d, d.id);
    await client.subscribeAsync(`d/${d.id}/commands/+`, { qos: 1 });
    await presenceOnline(s.t.platform.db, d.id);
    // A generic MQTT 5 request/response handler: answer on the Response Topic with the Correlation Data.
    client.on('message', (_topic, payload, packet) => {
      const { responseTopic, correlationData } = packet.properties ?? {};
      if (!responseTopic) return;
      const request = JSON.parse(payload.toString()) as { name: string };
      client.publish(responseTopic, JSON.stringify({ status: 'ok', result: { did: request.name } }), {
        qos: 1,
        properties: { correlationData },
      });
    });
    const actor = cliActor(s.org, 'test');
    const sent = await s.t.platform.devices.commands.send(actor, d.id, { name: 'blink' });
    const done = await s.t.platform.devices.commands.get(actor, d.id, sent.id, 5000);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { did: 'blink' });
  });

  it('mosquitto_pub -V mqttv5 with a device certificate publishes telemetry that lands, and is refused on another device’s topic', async () => {
    const d = await s.device();
    const other = await s.device();
    s.ssl.write('dev5.pem', d.cert);
    s.ssl.write('dev5.key', d.key);
    const pub = (topic: string) =>
      mosquittoClient('mosquitto_pub', { port: s.port, dir: s.ssl.dir, name: 'dev5', deviceId: d.id }, [
        '-V',
        'mqttv5',
        '-t',
        topic,
        '-m',
        '{"values":{"from":"mosquitto_pub v5"}}',
      ]);
    const ok = await pub(`d/${d.id}/telemetry`);
    assert.equal(ok.code, 0, ok.output);
    assert.equal(await s.stored(d.id), 1);
    const denied = s.t.server.mqtt!.stats.aclDenied;
    const refused = await pub(`d/${other.id}/telemetry`);
    assert.match(refused.output, /not authori[sz]ed/i);
    assert.equal(await s.stored(other.id), 0);
    assert.equal(s.t.server.mqtt!.stats.aclDenied, denied + 1);
  });
});

/** An MQTT 5 QoS 0 PUBLISH carrying a Topic Alias property (0x23), encoded by hand. */
function publishWithTopicAlias(topic: string, alias: number, payload: Buffer): Buffer {
  const name = Buffer.from(topic);
  const properties = Buffer.from([0x23, alias >> 8, alias & 0xff]);
  const body = Buffer.concat([
    Buffer.from([name.length >> 8, name.length & 0xff]),
    name,
    Buffer.from([properties.length]),
    properties,
    payload,
  ]);
  assert.ok(body.length < 128, 'one-byte remaining length');
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
