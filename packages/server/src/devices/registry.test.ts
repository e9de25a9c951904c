import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cliActor } from '../accounts/roles.js';
import { createOperator, organizationId, signIn } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { operatorSession, type TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';

const ORG_B = 'org-b';
const STATUSES = ['pending', 'active', 'quarantined', 'disabled', 'retired'] as const;

interface Device {
  id: string;
  serial: string;
  productId: string;
  status: string;
  tags: string[];
  group: string | null;
  firmwareVersion: string | null;
}

for (const engine of ENGINES) {
  describe(`device registry [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let auditorToken: string;
    let tokenB: string;
    let sensor: string;
    let gateway: string;
    before(async () => {
      ({ t, token } = await startOwnerPlatform(engine));
      auditorToken = (await operatorSession(t, token, 'auditor@example.com', 'auditor')).token;
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      tokenB = await signIn(t, await createOperator(t, 'owner-b@example.com', 'owner', ORG_B));
      const client = t.client();
      sensor = (await client.post('/api/v1/products', { name: 'Sensor', hardwareRevision: 'B2', firmwareLine: '3.x' }, { token })).body.id;
      gateway = (await client.post('/api/v1/products', { name: 'Gateway' }, { token })).body.id;
    });
    after(() => t?.close());

    const register = (body: Record<string, unknown>, as = token) => t.client().post('/api/v1/devices', body, { token: as });
    const auditActions = async (targetId: string) =>
      (await t.platform.audit.query({ organizationId: await organizationId(t), targetId, limit: 500 })).entries
        .map((e) => e.action)
        .reverse();

    it('registers a device as pending, reads it back, updates it, and audits each step', async () => {
      const client = t.client();
      const created = await register({
        serial: 'SN-0001',
        productId: sensor,
        attributes: { color: 'red' },
        tags: ['lab', 'beta'],
        group: 'floor 1',
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.status, 'pending');
      assert.deepEqual(created.body.tags, ['beta', 'lab']);
      const id = created.body.id as string;
      assert.deepEqual((await client.get(`/api/v1/devices/${id}`, { token: auditorToken })).body, created.body);
      const updated = await client.patch(`/api/v1/devices/${id}`, { tags: ['field'], group: null }, { token });
      assert.equal(updated.status, 200, updated.text);
      assert.deepEqual([updated.body.tags, updated.body.group, updated.body.attributes], [['field'], null, { color: 'red' }]);
      assert.deepEqual((await client.get('/api/v1/devices?tag=lab', { token })).body.devices, [], 'the old tag no longer matches');
      assert.deepEqual(
        (await client.get('/api/v1/devices?tag=field', { token })).body.devices.map((d: Device) => d.id),
        [id],
      );
      assert.deepEqual(await auditActions(id), ['device.registered', 'device.updated']);
      assert.equal(
        (await client.patch(`/api/v1/devices/${id}`, { serial: 'other' }, { token })).status,
        400,
        'the serial is not changeable',
      );
    });

    it('refuses a serial already registered, an unknown product, and a malformed serial or tag', async () => {
      await register({ serial: 'DUP-1', productId: sensor });
      const again = await register({ serial: 'DUP-1', productId: gateway });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'device.serial_taken');
      const unknown = await register({ serial: 'NEW-1', productId: randomUUID() });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.details.problems[0].field, 'productId');
      assert.equal((await register({ serial: 'has space', productId: sensor })).status, 400);
      assert.equal((await register({ serial: 'OK-1', productId: sensor, tags: ['bad tag'] })).status, 400);
      const products = await t.client().post('/api/v1/products', { name: 'Sensor' }, { token });
      assert.equal(products.status, 409);
      assert.equal(products.body.error.code, 'product.exists');
    });

    it('moves a device through its lifecycle and refuses illegal transitions with device.invalid_transition', async () => {
      const client = t.client();
      const id = (await register({ serial: 'LIFE-1', productId: sensor })).body.id as string;
      const act = (action: string) => client.post(`/api/v1/devices/${id}/${action}`, undefined, { token });
      for (const [action, status] of [
        ['activate', 'active'],
        ['quarantine', 'quarantined'],
        ['activate', 'active'],
        ['disable', 'disabled'],
      ] as const) {
        const res = await act(action);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.status, status);
      }
      const repeated = await act('disable');
      assert.equal(repeated.status, 409);
      assert.equal(repeated.body.error.code, 'device.invalid_transition');
      assert.deepEqual(repeated.body.error.details, { from: 'disabled', to: 'disabled', allowed: ['active', 'quarantined', 'retired'] });
      assert.equal((await act('retire')).body.status, 'retired');
      for (const action of ['activate', 'quarantine', 'disable', 'retire']) {
        const res = await act(action);
        assert.equal(res.status, 409, action);
        assert.equal(res.body.error.code, 'device.invalid_transition');
      }
      assert.equal((await client.get(`/api/v1/devices/${id}`, { token })).body.status, 'retired');
      const changes = (
        await t.platform.audit.query({ organizationId: await organizationId(t), targetId: id, action: 'device.status_changed', limit: 50 })
      ).entries.reverse();
      assert.deepEqual(
        changes.map((e) => [e.details.from, e.details.to]),
        [
          ['pending', 'active'],
          ['active', 'quarantined'],
          ['quarantined', 'active'],
          ['active', 'disabled'],
          ['disabled', 'retired'],
        ],
      );
    });

    it('lists with every filter and visits each matching device exactly once across pages', async () => {
      const actor = cliActor(await organizationId(t), 'test');
      const made: Device[] = [];
      for (let i = 0; i < 90; i++) {
        const device = await t.platform.devices.service.register(actor, {
          serial: `PAGE-${String((i * 37) % 90).padStart(3, '0')}`,
          productId: i % 3 === 0 ? gateway : sensor,
          tags: i % 4 === 0 ? ['even4', 'x'] : ['x'],
          group: i % 5 === 0 ? 'g5' : null,
        });
        const status = STATUSES[i % 4]!;
        if (status !== 'pending')
          await t.platform.devices.service.transition(
            actor,
            device.id,
            status === 'active' ? 'activate' : status === 'quarantined' ? 'quarantine' : 'disable',
          );
        const firmware = i % 2 === 0 ? '1.2.0' : '1.3.0';
        await t.platform.db.updateTable('devices').set({ firmware_version: firmware }).where('id', '=', device.id).execute();
        made.push({ ...device, status, firmwareVersion: firmware });
      }
      const filters: [string, (d: Device) => boolean][] = [
        ['serialPrefix=PAGE-', () => true],
        ['status=active&serialPrefix=PAGE-', (d) => d.status === 'active'],
        [`productId=${gateway}&serialPrefix=PAGE-`, (d) => d.productId === gateway],
        ['group=g5', (d) => d.group === 'g5'],
        ['tag=even4', (d) => d.tags.includes('even4')],
        ['tag=x&status=quarantined&firmwareVersion=1.2.0', (d) => d.status === 'quarantined' && d.firmwareVersion === '1.2.0'],
        ['serialPrefix=PAGE-01', (d) => d.serial.startsWith('PAGE-01')],
        ['firmwareVersion=1.3.0&serialPrefix=PAGE-0', (d) => d.firmwareVersion === '1.3.0' && d.serial.startsWith('PAGE-0')],
      ];
      for (const [query, match] of filters) {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const res: { status: number; text: string; body: { devices: Device[]; nextCursor: string | null } } = await t
            .client()
            .get(`/api/v1/devices?${query}&limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: auditorToken });
          assert.equal(res.status, 200, res.text);
          assert.ok(res.body.devices.length <= 7);
          seen.push(...res.body.devices.map((d: Device) => d.serial));
          cursor = res.body.nextCursor;
        } while (cursor);
        const expected = made
          .filter(match)
          .map((d) => d.serial)
          .sort();
        assert.ok(expected.length > 0, query);
        assert.deepEqual(seen, expected, query);
      }
      const bad = await t.client().get('/api/v1/devices?cursor=not-a-cursor', { token });
      assert.equal(bad.status, 400);
      assert.equal((await t.client().get('/api/v1/devices?limit=501', { token })).status, 400);
    });

    it('matches the serial prefix literally: % _ \\ and quotes are not wildcards or SQL', async () => {
      for (const serial of ['WC%1', 'WC_1', 'WCx1', 'WC\\1', "WC'1", 'WCAB']) await register({ serial, productId: sensor });
      const matching = async (serialPrefix: string) =>
        (await t.client().get(`/api/v1/devices?${new URLSearchParams({ serialPrefix })}`, { token })).body.devices.map(
          (d: Device) => d.serial,
        );
      assert.deepEqual(await matching('WC%'), ['WC%1']);
      assert.deepEqual(await matching('WC_'), ['WC_1']);
      assert.deepEqual(await matching('WC\\'), ['WC\\1']);
      assert.deepEqual(await matching("WC'"), ["WC'1"]);
      assert.deepEqual(await matching('%'), []);
      assert.deepEqual(await matching('_'), []);
      assert.deepEqual(await matching("' OR 1=1 --"), []);
      assert.equal((await matching('WC')).length, 6);
    });

    it("answers another organization's device IDs with the 404 of an unknown ID, and lists none of them", async () => {
      const victim = (await register({ serial: 'VICTIM-1', productId: sensor })).body.id as string;
      const client = t.client();
      const probes = (id: string) => [
        client.get(`/api/v1/devices/${id}`, { token: tokenB }),
        client.patch(`/api/v1/devices/${id}`, { tags: ['pwned'] }, { token: tokenB }),
        ...['activate', 'quarantine', 'disable', 'retire'].map((a) =>
          client.post(`/api/v1/devices/${id}/${a}`, undefined, { token: tokenB }),
        ),
      ];
      const onVictim = await Promise.all(probes(victim));
      const onNobody = await Promise.all(probes(randomUUID()));
      onVictim.forEach((res, i) => {
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.error.code, onNobody[i]!.body.error.code);
        assert.equal(onNobody[i]!.status, 404);
      });
      const row = (await client.get(`/api/v1/devices/${victim}`, { token })).body;
      assert.deepEqual([row.status, row.tags], ['pending', []]);
      assert.deepEqual((await client.get('/api/v1/devices?serialPrefix=VICTIM', { token: tokenB })).body.devices, []);
      assert.deepEqual((await client.get('/api/v1/products', { token: tokenB })).body.products, []);
      const crossProduct = await client.post('/api/v1/devices', { serial: 'VICTIM-1', productId: sensor }, { token: tokenB });
      assert.equal(crossProduct.status, 400, "another organization's product is unknown");
    });

    it('lets an auditor (devices:read) read but not write', async () => {
      const client = t.client();
      const id = (await register({ serial: 'AUD-1', productId: sensor })).body.id as string;
      assert.equal((await client.get('/api/v1/devices', { token: auditorToken })).status, 200);
      assert.equal((await client.get('/api/v1/products', { token: auditorToken })).status, 200);
      const writes = [
        await client.post('/api/v1/products', { name: 'Nope' }, { token: auditorToken }),
        await client.post('/api/v1/devices', { serial: 'AUD-2', productId: sensor }, { token: auditorToken }),
        await client.patch(`/api/v1/devices/${id}`, { tags: ['x'] }, { token: auditorToken }),
        await client.post(`/api/v1/devices/${id}/quarantine`, undefined, { token: auditorToken }),
        await client.request('POST', '/api/v1/devices/import', {
          raw: '{"serial":"AUD-3","product":"Sensor"}\n',
          headers: { 'content-type': 'application/x-ndjson' },
          token: auditorToken,
        }),
      ];
      for (const res of writes) {
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.error.code, 'auth.forbidden');
      }
      assert.equal((await client.get(`/api/v1/devices/${id}`, { token })).body.status, 'pending');
      assert.equal((await client.get('/api/v1/devices?serialPrefix=AUD-', { token })).body.devices.length, 1);
    });
  });
}
