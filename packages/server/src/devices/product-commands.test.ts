/**
 * Declared commands on both engines: PUT /products/:id/commands declares what a product's devices
 * take (checked strictly, audited, nothing written when refused); the platform then refuses a
 * command, a parameter or a type the product does not declare before anything reaches the device,
 * delivers a declared one, and with the declaration withdrawn sends any command again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { cliActor } from '../accounts/roles.js';
import { createOperator, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { connectDevice, eventually, inbox, presenceOnline } from '../testing/mqtt.js';
import { operatorSession, ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const ORG_B = 'org-b';
const DECLARED = [
  {
    name: 'set-brightness',
    description: 'Sets the display brightness',
    params: [
      { name: 'level', type: 'integer', required: true, description: '0 to 100' },
      { name: 'fade', type: 'boolean' },
    ],
  },
  { name: 'identify', description: 'Blinks the LED' },
];

for (const engine of ENGINES) {
  describe(`commands a product declares [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let auditorToken: string;
    let tokenB: string;
    let organizationId: string;
    let product: string;
    let device: TestDevice;
    let client: MqttClient;
    let messages: { topic: string; body: any }[];

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0, watchIntervalMs: 100 } });
      organizationId = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, organizationId, 'Lamp');
      // Certificates first: signing in moves the platform clock ahead of the wall clock.
      device = await provisionTestDevice(t.platform, organizationId, product, 'LAMP-1');
      ({ token } = await ownerSession(t));
      auditorToken = (await operatorSession(t, token, 'auditor@example.com', 'auditor')).token;
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      client = await connectDevice(t.server.mqtt!.port, t.ca, device, device.id);
      messages = inbox(client);
      await client.subscribeAsync([`d/${device.id}/commands/+`], { qos: 1 });
      await presenceOnline(t.platform.db, device.id);
    });
    after(async () => {
      client?.end(true);
      await t?.close();
    });

    const declare = (commands: unknown, as = token) => t.client().put(`/api/v1/products/${product}/commands`, { commands }, { token: as });
    const send = (body: unknown) => t.client().post(`/api/v1/devices/${device.id}/commands`, body, { token });
    const stored = async () =>
      (await t.platform.db.selectFrom('products').select('commands').where('id', '=', product).executeTakeFirstOrThrow()).commands;

    it('refuses a malformed declaration with the field named, and writes nothing', async () => {
      const cases: [unknown, RegExp][] = [
        [[{ name: 'a' }, { name: 'a' }], /declared twice/],
        [[{ name: 'a', params: [{ name: 'x', type: 'date' }] }], /commands\.0\.params\.0\.type/],
        [
          [
            {
              name: 'a',
              params: [
                { name: 'x', type: 'string' },
                { name: 'x', type: 'number' },
              ],
            },
          ],
          /"x" of "a" is declared twice/,
        ],
        [[{ name: 'bad name' }], /name must be 1-64/],
      ];
      for (const [commands, message] of cases) {
        const refused = await declare(commands);
        assert.equal(refused.status, 400, JSON.stringify(commands));
        assert.equal(refused.body.error.code, 'request.invalid');
        assert.match(refused.body.error.message, message);
      }
      assert.equal(await stored(), null);
    });

    it('lets only devices:write of the same organization declare', async () => {
      assert.equal((await declare(DECLARED, auditorToken)).status, 403);
      assert.equal((await declare(DECLARED, tokenB)).status, 404);
      assert.equal(await stored(), null);
    });

    it('declares, shows the declaration on the product, and audits it', async () => {
      const declared = await declare(DECLARED);
      assert.equal(declared.status, 200, declared.text);
      assert.deepEqual(declared.body.commands[1], { name: 'identify', description: 'Blinks the LED', params: [] });
      const listed = (await t.client().get('/api/v1/products', { token })).body.products.find((p: { id: string }) => p.id === product);
      assert.deepEqual(
        listed.commands[0].params.map((p: { name: string; required: boolean }) => [p.name, p.required]),
        [
          ['level', true],
          ['fade', false],
        ],
      );
      const { entries } = await t.platform.audit.query({ organizationId, action: 'product.commands_declared' });
      assert.deepEqual(entries[0]!.details.commands, ['set-brightness', 'identify']);
    });

    it('refuses an undeclared command, an unknown parameter, a wrong type and a missing one before the device sees it', async () => {
      const refusals: [unknown, string, RegExp][] = [
        [{ name: 'reboot' }, 'device.command_undeclared', /does not declare the command "reboot"; it declares: set-brightness, identify/],
        [{ name: 'set-brightness', params: { level: 5, colour: 'red' } }, 'device.command_undeclared', /takes no parameter "colour"/],
        [{ name: 'set-brightness', params: { level: 5.5 } }, 'request.invalid', /"level" of "set-brightness" must be of type integer/],
        [{ name: 'set-brightness', params: { fade: true } }, 'request.invalid', /needs the parameter "level"/],
      ];
      for (const [body, code, message] of refusals) {
        const refused = await send(body);
        assert.equal(refused.status, 400, JSON.stringify(body));
        assert.equal(refused.body.error.code, code);
        assert.match(refused.body.error.message, message);
      }
      assert.equal(
        await t.platform.db
          .selectFrom('device_commands')
          .select('id')
          .execute()
          .then((rows) => rows.length),
        0,
      );
      assert.equal(messages.length, 0, 'nothing reached the device');
    });

    it('delivers a declared command with its parameters', async () => {
      const sent = await send({ name: 'set-brightness', params: { level: 40, fade: true } });
      assert.equal(sent.status, 202, sent.text);
      await eventually(() => messages.length === 1, 5000, 'the device gets the command');
      assert.equal(messages[0]!.topic, `d/${device.id}/commands/${sent.body.id}`);
      assert.deepEqual(messages[0]!.body.params, { level: 40, fade: true });
    });

    it('with the declaration withdrawn, sends any command again', async () => {
      const withdrawn = await declare(null);
      assert.equal(withdrawn.status, 200);
      assert.equal(withdrawn.body.commands, null);
      assert.equal(await stored(), null);
      assert.equal((await send({ name: 'reboot' })).status, 202);
      const product2 = await t.platform.devices.service.listProducts(cliActor(organizationId, 'test'));
      assert.equal(product2.find((p) => p.id === product)!.commands, null);
    });
  });
}
