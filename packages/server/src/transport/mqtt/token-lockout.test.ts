/**
 * Failed token sign-ins per source address (broker.ts, through the device doors' failure limiter):
 * a client guessing symmetric-key tokens from one address is refused unchecked once it has used up
 * the minute's failures, while devices from other addresses, and certificate devices from the same
 * address, sign in as before. Real broker over mutual TLS; the addresses are 127.0.0.1 and 127.0.0.2
 * (the whole 127/8 is loopback).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions, MqttClient } from 'mqtt';
import { cliActor } from '../../accounts/roles.js';
import { createToken, deviceResource } from '../../devices/sas.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import { ENGINES } from '../../testing/engines.js';
import { connectDevice } from '../../testing/mqtt.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
const LIMIT = 5;
const ATTACKER = '127.0.0.2';
const ELSEWHERE = '127.0.0.1';

describe('MQTT token sign-ins: failures limited per source address', { skip: sqlite.skip }, () => {
  const s = useBrokerSuite(sqlite, { connectsPerSecond: 1000 }, 'LOCK', { auth: { loginRateLimitPerMinute: LIMIT } });
  let serial = 0;

  async function tokenDevice(): Promise<{ id: string; key: string }> {
    const actor = cliActor(s.org, 'test');
    const device = await s.t.platform.devices.service.register(actor, { serial: `LOCK-T-${++serial}`, productId: s.product });
    const { key } = await s.t.platform.devices.symmetricKeys.issueKey(actor, device.id);
    return { id: device.id, key };
  }

  const token = (key: string, id: string) => createToken(key, deviceResource(id), Math.floor(s.t.clock.now() / 1000) + 600);

  /** Connects from `from` to the broker's IPv4 address (its certificate names 127.0.0.1); rejects unless CONNACK says yes. */
  async function connectFrom(
    from: string,
    credentials: { key: string; cert: string } | null,
    clientId: string,
    extra: IClientOptions = {},
  ): Promise<MqttClient> {
    const client = await connectDevice(s.port, s.t.ca, credentials, clientId, {
      host: '127.0.0.1',
      hostname: '127.0.0.1',
      localAddress: from,
      ...extra,
    } as IClientOptions);
    s.clients.push(client);
    return client;
  }

  /** The CONNACK return code (MQTT 5: reason code) a refused sign-in got. */
  async function refusal(attempt: Promise<MqttClient>): Promise<number> {
    const error = (await attempt.then(
      () => assert.fail('signed in'),
      (e: unknown) => e,
    )) as { code?: number };
    assert.equal(typeof error.code, 'number', `no CONNACK code: ${String(error)}`);
    return error.code!;
  }

  it('attack: guessing tokens from one address is refused unchecked after the limit, while other devices sign in', async () => {
    const victim = await tokenDevice();
    const other = await tokenDevice();
    const failuresBefore = s.t.server.mqtt!.stats.authFailures;
    for (let i = 0; i < LIMIT; i++) {
      const guess = createToken(Buffer.alloc(32, i + 1), deviceResource(victim.id), Math.floor(s.t.clock.now() / 1000) + 600);
      const code = await refusal(connectFrom(ATTACKER, null, victim.id, { username: victim.id, password: guess }));
      assert.ok(code === 4 || code === 5, `guess ${i + 1} refused as bad credentials, got ${code}`);
    }
    assert.equal(s.t.server.mqtt!.stats.authFailures - failuresBefore, LIMIT);

    // Locked out: even the right token is refused from that address, unchecked, "server unavailable" (retry later).
    const lockedBefore = s.t.server.mqtt!.stats.authLockedOut;
    const good = token(victim.key, victim.id);
    assert.equal(await refusal(connectFrom(ATTACKER, null, victim.id, { username: victim.id, password: good })), 3);
    assert.equal(
      await refusal(connectFrom(ATTACKER, null, victim.id, { username: victim.id, password: good, protocolVersion: 5 })),
      0x88,
      'MQTT 5: server unavailable',
    );
    assert.equal(s.t.server.mqtt!.stats.authLockedOut - lockedBefore, 2);
    assert.equal(s.t.server.mqtt!.stats.authFailures - failuresBefore, LIMIT, 'refused unchecked: not checked, not counted again');

    // Other addresses are not affected: another device, and the victim itself with its real token.
    const fine = await connectFrom(ELSEWHERE, null, other.id, { username: other.id, password: token(other.key, other.id) });
    assert.equal(fine.connected, true);
    const victimItself = await connectFrom(ELSEWHERE, null, victim.id, { username: victim.id, password: good });
    assert.equal(victimItself.connected, true);
    await victimItself.publishAsync(`d/${victim.id}/telemetry`, '{"values":{"t":1}}', { qos: 1 });
    assert.equal(await s.stored(victim.id), 1);

    // A certificate device behind the attacker's address (the same NAT) signs in: the lockout is on tokens.
    const withCertificate = await s.device();
    const behindNat = await connectFrom(ATTACKER, withCertificate, withCertificate.id);
    assert.equal(behindNat.connected, true);
  });

  it('a good sign-in gives its place back: devices of one address signing in often are never locked out', async () => {
    const device = await tokenDevice();
    for (let i = 0; i < LIMIT * 2; i++) {
      const client = await connectFrom(ELSEWHERE, null, device.id, { username: device.id, password: token(device.key, device.id) });
      await client.endAsync();
    }
  });
});
