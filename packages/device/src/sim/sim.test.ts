import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { firstOwner, stepUp, ownerSession } from '@bulwark/server/testing';
import { startDevicePlatform, tempDir, type DevicePlatform } from '../testing/platform.js';
import { main } from './cli.js';

/** Runs `bulwark-sim` in this process; returns its exit code and everything it printed. */
async function sim(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c: Buffer) => (chunks.out += c.toString()));
  err.on('data', (c: Buffer) => (chunks.err += c.toString()));
  const code = await main(args, out as unknown as NodeJS.WriteStream, err as unknown as NodeJS.WriteStream);
  return { code, ...chunks };
}

describe('bulwark-sim against a real platform', () => {
  let p: DevicePlatform;
  let apiKey: string;
  let caFile: string;
  const temp = tempDir('sim');
  before(async () => {
    p = await startDevicePlatform();
    const client = p.t.client();
    const session = await ownerSession(p.t, client);
    await stepUp(p.t, await firstOwner(p.t, session), session.token, client);
    const created = await client.post(
      '/api/v1/me/api-keys',
      { name: 'simulator', scopes: ['devices:read', 'devices:write'], expiresInDays: 1 },
      { token: session.token },
    );
    assert.equal(created.status, 201, created.text);
    apiKey = created.body.secret;
    // Signing in moved the platform's clock past the TOTP steps; certificates issued now would
    // start in the future for TLS, which reads the real clock.
    p.t.clock.set(Date.now());
    caFile = join(temp.dir, 'ca.pem');
    writeFileSync(caFile, p.t.ca);
  });
  after(async () => {
    await p?.close();
    temp.remove();
  });

  const base = () => ['--api', p.apiUrl, '--ca', caFile, '--mqtt', p.brokerUrl];

  it('runs 3 devices, each with its own key, certificate and TLS connection, and every message it reports acknowledged is stored', async () => {
    const run = await sim([...base(), '--api-key', apiKey, '--devices', '3', '--rate', '5', '--duration', '2', '--json']);
    assert.equal(run.code, 0, run.out + run.err);
    const summary = JSON.parse(run.out.trim().split('\n').at(-1)!) as {
      ok: boolean;
      devices: number;
      sent: number;
      acked: number;
      errors: number;
      averageRate: number;
    };
    assert.equal(summary.ok, true);
    assert.equal(summary.devices, 3);
    assert.equal(summary.errors, 0);
    // 3 devices × 5/s × 2 s, give or take a tick of each device's timer.
    assert.ok(summary.sent >= 24 && summary.sent <= 33, `sent ${summary.sent}`);
    assert.equal(summary.acked, summary.sent);

    const product = await p.t.platform.db.selectFrom('products').select('id').where('name', '=', 'bulwark-sim').executeTakeFirstOrThrow();
    const devices = await p.t.platform.db.selectFrom('devices').select(['id', 'status']).where('product_id', '=', product.id).execute();
    assert.equal(devices.length, 3);
    assert.ok(devices.every((d) => d.status === 'active'));
    const certificates = await p.t.platform.db
      .selectFrom('issued_certificates')
      .select('device_id')
      .where(
        'device_id',
        'in',
        devices.map((d) => d.id),
      )
      .execute();
    assert.equal(new Set(certificates.map((c) => c.device_id)).size, 3);
    const stored = await Promise.all(devices.map((d) => p.stored(d.id)));
    assert.ok(
      stored.every((n) => n >= 8),
      `stored per device: ${stored.join(', ')}`,
    );
    assert.equal(
      stored.reduce((a, b) => a + b, 0),
      summary.acked,
    );
  });

  it('runs 2 gateways × 5 children: each gateway registers its children over MQTT and their telemetry lands under each child', async () => {
    const run = await sim([
      ...base(),
      '--api-key',
      apiKey,
      '--gateways',
      '2',
      '--children-per-gateway',
      '5',
      '--rate',
      '2',
      '--duration',
      '2',
      '--json',
    ]);
    assert.equal(run.code, 0, run.out + run.err);
    const summary = JSON.parse(run.out.trim().split('\n').at(-1)!) as {
      ok: boolean;
      devices: number;
      children: number;
      sent: number;
      acked: number;
    };
    assert.equal(summary.ok, true);
    assert.deepEqual([summary.devices, summary.children], [2, 10]);
    assert.equal(summary.acked, summary.sent);
    const gateways = await p.t.platform.db.selectFrom('devices').select('id').where('gateway_enabled_at', 'is not', null).execute();
    assert.equal(gateways.length, 2);
    const children = await p.t.platform.db
      .selectFrom('devices')
      .select(['id', 'gateway_id'])
      .where(
        'gateway_id',
        'in',
        gateways.map((g) => g.id),
      )
      .execute();
    assert.equal(children.length, 10);
    for (const g of gateways) assert.equal(children.filter((c) => c.gateway_id === g.id).length, 5);
    const stored = await Promise.all(children.map((c) => p.stored(c.id)));
    assert.ok(
      stored.every((n) => n >= 2),
      `stored per child: ${stored.join(', ')}`,
    );
    assert.equal(
      stored.reduce((a, b) => a + b, 0),
      summary.acked,
    );
    // Nothing under the gateways themselves: they only relayed.
    for (const g of gateways) assert.equal(await p.stored(g.id), 0);
  });

  it('prints progress lines and a readable summary, and exits 1 when the API key is refused', async () => {
    const run = await sim([
      ...base(),
      '--api-key',
      'bwk_00000000-0000-0000-0000-000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      '--devices',
      '2',
      '--rate',
      '1',
      '--duration',
      '1',
    ]);
    assert.equal(run.code, 1, run.out);
    assert.match(run.out, /^FAILED: 2 devices, sent 0, acked 0, errors 1/m);
    assert.match(run.out, /- .*(invalid|unauthenticated|API key)/i);
  });

  it('exits 2 with the usage for bad arguments', async () => {
    const run = await sim([...base(), '--api-key', apiKey, '--devices', '0', '--rate', '1', '--duration', '1']);
    assert.equal(run.code, 2);
    assert.match(run.err, /--devices must be a positive number/);
    assert.match(run.err, /Usage: bulwark-sim/);
  });
});
