/**
 * `bulwark devices gateway | children | attach-child | detach-child` as child processes on a
 * temporary SQLite data directory (initialized in-process).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { bulwark, initializedDataDir } from '../testing/cli.js';

describe('bulwark devices gateway, children, attach-child, detach-child (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  before(async () => {
    ({ dir, args: d } = await initializedDataDir('gateway-cli', async (platform, actor) => {
      const product = await platform.devices.service.createProduct(actor, { name: 'Hub' });
      for (const serial of ['GW-A', 'GW-B', 'SENSOR-1', 'DIRECT-1'])
        await platform.devices.service.register(actor, { serial, productId: product.id });
      await platform.devices.service.transition(actor, (await platform.devices.service.getBySerial(actor, 'DIRECT-1')).id, 'activate');
      // GW-A is made a gateway here, GW-B by the command: one child process fewer, the command still run.
      await platform.devices.gateways.setGateway(actor, (await platform.devices.service.getBySerial(actor, 'GW-A')).id, true);
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes gateways, attaches, moves, lists and detaches a child; refuses a directly connected device', async () => {
    const made = await bulwark(['devices', 'gateway', 'GW-B', ...d, '--json']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(JSON.parse(made.stdout).gateway, true);
    const attached = await bulwark(['devices', 'attach-child', 'GW-A', 'SENSOR-1', ...d]);
    assert.equal(attached.code, 0, attached.stderr);
    const moved = await bulwark(['devices', 'attach-child', 'GW-B', 'SENSOR-1', ...d]);
    assert.equal(moved.code, 0, moved.stderr);
    const [childrenA, childrenB] = await Promise.all([
      bulwark(['devices', 'children', 'GW-A', ...d, '--json']),
      bulwark(['devices', 'children', 'GW-B', ...d, '--json']),
    ]);
    assert.deepEqual(JSON.parse(childrenA.stdout).children, []);
    assert.deepEqual(
      JSON.parse(childrenB.stdout).children.map((c: { serial: string; status: string }) => [c.serial, c.status]),
      [['SENSOR-1', 'active']],
    );
    const direct = await bulwark(['devices', 'attach-child', 'GW-A', 'DIRECT-1', ...d]);
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /gateway\.child_taken|directly connected/);
    const off = await bulwark(['devices', 'gateway', 'GW-B', '--off', ...d]);
    assert.notEqual(off.code, 0);
    assert.match(off.stderr, /gateway\.has_children|still has 1 children/);
    const detached = await bulwark(['devices', 'detach-child', 'GW-B', 'SENSOR-1', ...d]);
    assert.equal(detached.code, 0, detached.stderr);
    assert.equal((await bulwark(['devices', 'gateway', 'GW-B', '--off', ...d])).code, 0);
  });
});
