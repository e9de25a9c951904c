/**
 * Issuing or rotating a device's symmetric key hands out the credential the device signs its tokens
 * with, and an enrollment group's key derives the key of any serial of its product: from a person's
 * session the API asks for a recent step-up first, as for credential rotation
 * (rotation-step-up.test.ts), with the same code, auth.step_up_required. The attack: the session
 * cookie of a signed-in operator (with its CSRF token), copied into another client without the
 * password or a second factor, once the sign-in's proof is older than the step-up window. It gets
 * no key, the device's key still works, and nothing is recorded. Right after a step-up the same
 * session passes; an API key with devices:write (automation) passes without one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes } from '@bulwark/protocol';
import { cookieSignIn, createOperator, stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import type { HttpClient } from '../testing/http.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import type { TestPlatform } from '../testing/server.js';
import { createToken, deviceResource } from './sas.js';

const STEP_UP_WINDOW_MS = 5 * 60_000;
const SESSION_COOKIE = '__Host-bulwark_session';

for (const engine of ENGINES) {
  describe(`symmetric keys behind step-up [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let owner: TestUser;
    let ownerToken: string;
    let product: string;
    let operator: TestUser;
    /** The operator's browser: a cookie session and its CSRF token. */
    let browser: HttpClient;
    let csrf: string;
    let serials = 0;

    before(async () => {
      ({ t, owner, token: ownerToken } = await startOwnerPlatform(engine));
      product = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token: ownerToken })).body.id;
      operator = await createOperator(t, 'keys-operator@example.com', 'operator');
      ({ client: browser, csrfToken: csrf } = await cookieSignIn(t, operator));
    });
    after(() => t?.close());

    const stale = () => t.clock.advance(STEP_UP_WINDOW_MS + 1000);
    const asBrowser = (client: HttpClient, path: string, body: unknown) => client.post(path, body, { headers: { 'x-csrf-token': csrf } });

    async function device(): Promise<string> {
      const created = await t.client().post('/api/v1/devices', { serial: `SKS-${++serials}`, productId: product }, { token: ownerToken });
      assert.equal(created.status, 201, created.text);
      return created.body.id;
    }

    /** A client holding only a copy of the browser's session cookie (and the CSRF token the page showed). */
    function thief(): HttpClient {
      const client = t.client(true);
      client.cookies.set(SESSION_COOKIE, browser.cookies.get(SESSION_COOKIE)!);
      return client;
    }

    const keyRows = async (id: string) => (await t.platform.audit.query({ targetId: id, action: 'device.symmetric_key_issued' })).entries;
    const works = async (key: string, id: string) =>
      (
        await t.client().get('/device/v1/identity', {
          headers: { authorization: createToken(key, deviceResource(id), Math.floor(t.clock.now() / 1000) + 300) },
        })
      ).status === 200;

    it('attack: a stolen session cookie without a fresh step-up gets no key, rotates nothing, and is told to step up', async () => {
      const id = await device();
      const owned = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, {}, { token: ownerToken });
      assert.equal(owned.status, 201, owned.text);
      stale();
      const stolen = thief();
      const rotate = await asBrowser(stolen, `/api/v1/devices/${id}/symmetric-key`, {});
      assert.equal(rotate.status, 403, rotate.text);
      assert.equal(rotate.body.error.code, ErrorCodes.stepUpRequired);
      assert.equal(rotate.body.key, undefined, 'no key in the refusal');
      assert.equal(await works(owned.body.key, id), true, "the device's key still works");
      const group = await asBrowser(stolen, '/api/v1/enrollment-groups', { name: 'stolen', productId: product });
      assert.equal(group.status, 403, group.text);
      assert.equal(group.body.error.code, ErrorCodes.stepUpRequired);
      assert.equal(group.body.key, undefined);
      const first = await asBrowser(stolen, `/api/v1/devices/${await device()}/symmetric-key`, {});
      assert.equal(first.status, 403, 'a first key is a credential too');
      assert.equal((await t.platform.audit.query({ action: 'device.symmetric_key_rotated', targetId: id })).entries.length, 0);
      assert.equal((await t.platform.audit.query({ action: 'enrollment_group.created' })).entries.length, 0);
      assert.equal((await keyRows(id)).length, 1, 'only the owner’s issue is recorded');
    });

    it('lets the same session issue and rotate right after a step-up, and refuses it again once the step-up is stale', async () => {
      const id = await device();
      const refused = await asBrowser(browser, `/api/v1/devices/${id}/symmetric-key`, {});
      assert.equal(refused.status, 403, refused.text);
      const steppedUp = await asBrowser(browser, '/api/v1/auth/step-up', { password: operator.password });
      assert.equal(steppedUp.status, 200, steppedUp.text);
      const issued = await asBrowser(browser, `/api/v1/devices/${id}/symmetric-key`, {});
      assert.equal(issued.status, 201, issued.text);
      assert.equal(await works(issued.body.key, id), true);
      const rotated = await asBrowser(browser, `/api/v1/devices/${id}/symmetric-key`, { graceSeconds: 60 });
      assert.equal(rotated.status, 201, rotated.text);
      assert.equal(rotated.body.rotated, true);
      const group = await asBrowser(browser, '/api/v1/enrollment-groups', { name: 'line-1', productId: product });
      assert.equal(group.status, 201, group.text);
      stale();
      const late = await asBrowser(browser, `/api/v1/devices/${id}/symmetric-key`, {});
      assert.equal(late.status, 403, late.text);
      assert.equal(late.body.error.code, ErrorCodes.stepUpRequired);
      assert.equal(await works(rotated.body.key, id), true, 'the refused rotation changed nothing');
    });

    it('lets an API key with devices:write issue, rotate and create a group without a step-up (automation)', async () => {
      await stepUp(t, owner, ownerToken);
      const created = await t
        .client()
        .post('/api/v1/me/api-keys', { name: 'keys', scopes: ['devices:read', 'devices:write'], expiresInDays: 1 }, { token: ownerToken });
      assert.equal(created.status, 201, created.text);
      const apiKey = created.body.secret as string;
      stale();
      const id = await device();
      const issued = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, {}, { token: apiKey });
      assert.equal(issued.status, 201, issued.text);
      const rotated = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, {}, { token: apiKey });
      assert.equal(rotated.status, 201, rotated.text);
      assert.equal(await works(rotated.body.key, id), true);
      const group = await t.client().post('/api/v1/enrollment-groups', { name: 'automation', productId: product }, { token: apiKey });
      assert.equal(group.status, 201, group.text);
    });

    it('answers an unknown device with 404 before asking for a step-up', async () => {
      stale();
      const unknown = await asBrowser(browser, '/api/v1/devices/00000000-0000-4000-8000-000000000000/symmetric-key', {});
      assert.equal(unknown.status, 404, unknown.text);
    });
  });
}
