/**
 * Last wills: a device that drops off by itself leaves its will; a session the platform ends
 * (certificate revoked, device disabled, retired or quarantined, credential expired) leaves none,
 * nor does one whose device lost its standing just before it dropped off (before the credential
 * watcher noticed), nor a will no node holds the session of. The will is telemetry here, so a
 * published will is a stored row. SQLite only: the behaviour is the broker's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../../accounts/roles.js';
import { createToken, deviceResource } from '../../devices/sas.js';
import { ENGINES } from '../../testing/engines.js';
import type { TestDevice } from '../../testing/devices.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import { closed, connectDevice, presenceOnline, settle } from '../../testing/mqtt.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

describe('last wills [sqlite]', () => {
  const s = useBrokerSuite(sqlite, { watchIntervalMs: 100 }, 'WL');
  const will = (id: string) => ({
    topic: `d/${id}/telemetry`,
    payload: Buffer.from('{"values":{"will":1}}'),
    qos: 1 as const,
    retain: false,
  });

  async function online(d: Pick<TestDevice, 'id' | 'key' | 'cert'> | null, id: string, extra: Parameters<typeof connectDevice>[4] = {}) {
    const client = await connectDevice(s.port, s.t.ca, d, id, { will: will(id), ...extra });
    s.clients.push(client);
    await presenceOnline(s.t.platform.db, id);
    return client;
  }

  it('a device that drops off by itself leaves its will', async () => {
    const d = await s.device();
    const client = await online(d, d.id);
    const gone = closed(client);
    client.stream.destroy();
    await gone;
    await settle(300);
    assert.equal(await s.stored(d.id), 1);
  });

  for (const [what, end] of [
    [
      'its certificate is revoked',
      (d: TestDevice) =>
        s.t.platform.pki.revoke({ organizationId: s.org, serial: d.certSerial, reason: 'keyCompromise' }, { type: 'cli', id: 'test' }),
    ],
    ['the device is disabled', (d: TestDevice) => s.t.platform.devices.service.transition(cliActor(s.org, 'test'), d.id, 'disable')],
    ['the device is retired', (d: TestDevice) => s.t.platform.devices.service.transition(cliActor(s.org, 'test'), d.id, 'retire')],
    [
      'the device is quarantined',
      (d: TestDevice) => s.t.platform.devices.service.transition(cliActor(s.org, 'test'), d.id, 'quarantine', 'test'),
    ],
  ] as const) {
    it(`attack: when ${what}, the session ends and its will is not published`, async () => {
      const d = await s.device();
      const client = await online(d, d.id);
      const gone = closed(client);
      const dropped = s.t.server.mqtt!.stats.willsDropped;
      await end(d);
      await gone;
      await settle(300);
      assert.equal(await s.stored(d.id), 0);
      assert.equal(s.t.server.mqtt!.stats.willsDropped, dropped + 1);
    });
  }

  it('attack: a token device whose token expires leaves no will', async () => {
    const actor = cliActor(s.org, 'test');
    const registered = await s.t.platform.devices.service.register(actor, { serial: 'WL-SYM', productId: s.product });
    const { key } = await s.t.platform.devices.symmetricKeys.issueKey(actor, registered.id);
    const token = createToken(key, deviceResource(registered.id), Math.floor(s.t.clock.now() / 1000) + 2);
    const client = await online(null, registered.id, { username: registered.id, password: token });
    await closed(client, 10_000);
    await settle(300);
    assert.equal(await s.stored(registered.id), 0);
  });

  it('attack: a device revoked an instant before it drops off (no node has acted on it yet) leaves no will', async () => {
    const d = await s.device();
    const client = await online(d, d.id);
    // Revoked in the database and the connection lost at once: the credential watcher has not
    // polled yet, so this node learns of it when the will is about to go out.
    await s.t.platform.db
      .updateTable('issued_certificates')
      .set({ status: 'revoked', revoked_at: s.t.clock.now() })
      .where('serial', '=', d.certSerial)
      .execute();
    const gone = closed(client);
    client.stream.destroy();
    await gone;
    await settle(300);
    assert.equal(await s.stored(d.id), 0);
  });

  it('attack: a will no node holds the session of (left by a node that stopped) is not published', async () => {
    const d = await s.device();
    // What Aedes' will sweep does with a dead node's wills: authorize them with no client.
    const broker = (
      s.t.server.mqtt as unknown as {
        broker: { authorizePublish: (client: null, packet: object, done: (error?: Error | null) => void) => void };
      }
    ).broker;
    const error = await new Promise<Error | null | undefined>((resolve) =>
      broker.authorizePublish(null, { cmd: 'publish', ...will(d.id), clientId: d.id }, resolve),
    );
    assert.ok(error instanceof Error);
  });
});
