/**
 * `bulwark products commands show | set | withdraw` as child processes on a temporary SQLite data
 * directory (initialized in-process): a declaration from a file, printed back, refused whole when
 * one entry is wrong or the file is not JSON, withdrawn; each change audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../ops/config.js';
import { openPlatform } from '../platform.js';
import { bulwark, initializedDataDir } from '../testing/cli.js';

const DECLARED = [
  { name: 'unlock', description: 'Open the bolt', params: [{ name: 'seconds', type: 'integer', required: true, description: 'How long' }] },
  { name: 'identify', description: 'Blink', params: [] },
];

describe('bulwark products commands show, set, withdraw (CLI, SQLite)', () => {
  let dir: string;
  let dataDir: string;
  let d: string[];
  before(async () => {
    ({
      dir,
      dataDir,
      args: d,
    } = await initializedDataDir('products-cli', async (platform, actor) => {
      await platform.devices.service.createProduct(actor, { name: 'Lock' });
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const shown = async () => {
    const run = await bulwark(['products', 'commands', 'show', 'Lock', ...d, '--json']);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout).commands as unknown;
  };

  it('declares the commands from a file, prints them, and audits the change', async () => {
    assert.equal(await shown(), null, 'nothing declared at first');
    const set = await bulwark(['products', 'commands', 'set', 'Lock', '--file', file('lock.json', JSON.stringify(DECLARED)), ...d]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /unlock\(seconds: integer\)\tOpen the bolt/);
    assert.match(set.stdout, /identify\(\)\tBlink/);
    assert.deepEqual(await shown(), DECLARED);
    const platform = await openPlatform(loadConfig({ dataDir, env: {} }), { env: {} });
    try {
      const { entries } = await platform.audit.query({ action: 'product.commands_declared' });
      assert.deepEqual(entries[0]?.details.commands, ['unlock', 'identify']);
      assert.equal(entries[0]?.actor.type, 'cli');
    } finally {
      await platform.close();
    }
  });

  it('refuses a wrong declaration whole (naming the field) and a file that is not JSON; the declaration stays', async () => {
    const wrong = [DECLARED[0], { name: 'reboot', description: '', params: [{ name: 'delay', type: 'duration' }] }];
    const refused = await bulwark(['products', 'commands', 'set', 'Lock', '--file', file('wrong.json', JSON.stringify(wrong)), ...d]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /commands\[1\]\.params\[0\]\.type must be one of string, number, integer, boolean/);
    const garbled = await bulwark(['products', 'commands', 'set', 'Lock', '--file', file('garbled.json', '[{"name": '), ...d]);
    assert.equal(garbled.code, 2, garbled.stderr);
    assert.match(garbled.stderr, /garbled\.json is not JSON/);
    assert.deepEqual(await shown(), DECLARED);
  });

  it('answers an unknown product with exit 4, and withdraws the declaration', async () => {
    const unknown = await bulwark(['products', 'commands', 'withdraw', 'Kettle', ...d]);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /Product "Kettle"/);
    const withdrawn = await bulwark(['products', 'commands', 'withdraw', 'Lock', ...d]);
    assert.equal(withdrawn.code, 0, withdrawn.stderr);
    assert.match(withdrawn.stdout, /No commands declared: any command name is sent/);
    assert.equal(await shown(), null);
  });
});
