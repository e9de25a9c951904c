/**
 * The attack on the device doors' failure limit with two nodes (as two workers) behind one address:
 * an attacker guessing a device's symmetric key, or calling the director without a certificate,
 * spreads its attempts over both nodes. With Redis the nodes count the address together, so the
 * attempt past `auth.loginRateLimitPerMinute` is refused (429 `request.rate_limited`) on either
 * node, even with the right key; without the shared count each node would allow the limit again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DIRECTOR_TARGETS_PATH, ErrorCodes } from '@bulwark/protocol';
import { cliActor } from '../accounts/roles.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import type { HttpClient } from '../testing/http.js';
import type { TestPlatform } from '../testing/server.js';
import { startTwoNodes, twoNodesSkip, type SecondNode } from '../testing/two-nodes.js';
import { createToken, deviceResource } from './sas.js';

const skip = await twoNodesSkip();
const LIMIT = 4;

describe('device authentication failures counted across two nodes sharing Redis', { skip }, () => {
  let t: TestPlatform;
  let node2: SecondNode;
  let deviceId: string;
  let key: string;

  before(async () => {
    ({ t, node2 } = await startTwoNodes({ auth: { loginRateLimitPerMinute: LIMIT } }));
    const org = await organizationIdOf(t.platform, t.org);
    const actor = cliActor(org, 'test');
    const device = await t.platform.devices.service.register(actor, {
      serial: 'ACROSS-1',
      productId: await testProduct(t.platform, org),
    });
    deviceId = device.id;
    key = (await t.platform.devices.symmetricKeys.issueKey(actor, deviceId)).key;
  });
  after(async () => {
    await node2?.close();
    await t?.close();
  });

  const token = (withKey: string | Buffer) => createToken(withKey, deviceResource(deviceId), Math.floor(t.clock.now() / 1000) + 600);
  const identity = (api: HttpClient, authorization: string) => api.get('/device/v1/identity', { headers: { authorization } });

  it('refuses the key guess past the limit on either node, and then the right key too, with request.rate_limited', async () => {
    const nodes = [t.client(), node2.api];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await identity(nodes[i % 2]!, token(randomBytes(32)))).status);
    assert.deepEqual(statuses, Array<number>(LIMIT).fill(401), 'each guess is refused as a wrong key');
    for (const api of nodes) {
      const refused = await identity(api, token(randomBytes(32)));
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.error.code, ErrorCodes.rateLimited);
      assert.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After says when to come back');
    }
    const right = await identity(node2.api, token(key));
    assert.equal(right.status, 429, 'the address is refused, whatever it presents, until the window ends');
  });

  it('refuses a director request without a certificate past the limit on either node (its own count)', async () => {
    const nodes = [t.client(), node2.api];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await nodes[i % 2]!.get(DIRECTOR_TARGETS_PATH)).status);
    assert.deepEqual(statuses, Array<number>(LIMIT).fill(401));
    for (const api of nodes) {
      const refused = await api.get(DIRECTOR_TARGETS_PATH);
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.error.code, ErrorCodes.rateLimited);
    }
  });
});
