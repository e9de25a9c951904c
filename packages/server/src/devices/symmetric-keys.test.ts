/**
 * Symmetric-key devices over real HTTPS on both engines: keys issued and rotated by an operator,
 * tokens checked by the service the broker will call, enrollment groups and DPS-style
 * self-registration, and the attacks: replay after expiry, a forged or wrong-device token, a
 * far-future expiry, an old key after rotation, a disabled group, another organization's serial,
 * and a copy of the database without the master key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from '@bulwark/protocol';
import { KeyCustodyError, SecretBox } from '../keys/custody.js';
import { rotateMasterKey } from '../keys/rotation.js';
import { createOperator, signIn, stepUp, type TestUser } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { Openssl } from '../testing/openssl.js';
import type { TestPlatform } from '../testing/server.js';
import { startOwnerPlatform } from '../testing/owner-platform.js';
import { DeviceAuthenticationError, type DeviceAuthFailure } from './identity.js';
import { createToken, deriveDeviceKey, deviceResource, registrationResource } from './sas.js';
import { groupContext, keyContext } from './symmetric-keys.js';

const ORG_B = 'org-b';

for (const engine of ENGINES) {
  describe(`symmetric-key devices [${engine.engine}]`, { skip: engine.skip, concurrency: 1 }, () => {
    let t: TestPlatform;
    let token: string;
    let owner: TestUser;
    let ownerB: TestUser;
    let tokenB: string;
    let product: string;
    let productB: string;
    const ssl = new Openssl();
    before(async () => {
      ({ t, token, owner } = await startOwnerPlatform(engine));
      await t.platform.accounts.service.createOrganization({ slug: ORG_B, name: 'Organization B' }, { type: 'cli', id: 'test' });
      ownerB = await createOperator(t, 'owner-b@example.com', 'owner', ORG_B);
      tokenB = await signIn(t, ownerB);
      product = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token })).body.id;
      productB = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token: tokenB })).body.id;
    });
    after(async () => {
      ssl.close();
      await t?.close();
    });

    let serials = 0;
    async function device(serial = `SK-${++serials}`, as = token, productId = product): Promise<string> {
      const created = await t.client().post('/api/v1/devices', { serial, productId }, { token: as });
      assert.equal(created.status, 201, created.text);
      return created.body.id;
    }
    async function issue(
      id: string,
      body: Record<string, unknown> = {},
      as = token,
    ): Promise<{ key: string; version: number; rotated: boolean; previousKeyValidUntil: string | null }> {
      await fresh(as);
      const res = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, body, { token: as });
      assert.equal(res.status, 201, res.text);
      return res.body;
    }
    /** Handing out a key or a group's key needs a recent step-up (symmetric-key-step-up.test.ts). */
    const fresh = (as: string) => stepUp(t, as === tokenB ? ownerB : owner, as);
    async function createGroup(name: string) {
      await fresh(token);
      return t.client().post('/api/v1/enrollment-groups', { name, productId: product }, { token });
    }
    const seconds = () => Math.floor(t.clock.now() / 1000);
    const sas = (key: string | Buffer, id: string, ttl = 600) => createToken(key, deviceResource(id), seconds() + ttl);
    const identity = (authorization: string) => t.client().get('/device/v1/identity', { headers: { authorization } });
    const lifecycle = (id: string, action: string) => t.client().post(`/api/v1/devices/${id}/${action}`, undefined, { token });
    async function refused(deviceId: string, presented: string, reason: DeviceAuthFailure): Promise<void> {
      await assert.rejects(
        t.platform.devices.symmetricKeys.authenticate(deviceId, presented),
        (e: unknown) => e instanceof DeviceAuthenticationError && e.reason === reason,
      );
    }
    async function audited(action: string, targetId: string) {
      return (await t.platform.audit.query({ action, targetId })).entries;
    }

    it('issues a key once and authenticates a token signed with it; the audit entry holds no key', async () => {
      const id = await device();
      const issued = await issue(id);
      assert.equal(Buffer.from(issued.key, 'base64').length, 32);
      assert.deepEqual([issued.version, issued.rotated, issued.previousKeyValidUntil], [1, false, null]);
      const res = await identity(sas(issued.key, id));
      assert.equal(res.status, 200, res.text);
      // Holding a credential makes a pending device active, as a certificate does; audited.
      assert.deepEqual(
        [res.body.deviceId, res.body.serial, res.body.status, res.body.credential.type, res.body.credential.keyVersion],
        [id, `SK-${serials}`, 'active', 'symmetric_key', 1],
      );
      assert.ok(
        (await audited('device.status_changed', id)).some((e) => (e.details as { reason?: string }).reason === 'symmetric key issued'),
      );
      const direct = await t.platform.devices.symmetricKeys.authenticate(id, sas(issued.key, id));
      assert.equal(direct.productId, product);
      const entries = await audited('device.symmetric_key_issued', id);
      assert.equal(entries.length, 1);
      assert.doesNotMatch(JSON.stringify(entries), new RegExp(issued.key.slice(0, 20).replace(/[+/]/g, '.')));
    });

    it('refuses a token replayed after its expiry', async () => {
      const id = await device();
      const { key } = await issue(id);
      const captured = sas(key, id, 300);
      assert.equal((await identity(captured)).status, 200);
      t.clock.advance(301_000);
      const replay = await identity(captured);
      assert.equal(replay.status, 401, replay.text);
      assert.equal(replay.body.error.code, ErrorCodes.deviceAuthFailed);
      await refused(id, captured, 'expired');
    });

    it('refuses a token forged with a wrong key, and a missing or malformed Authorization header', async () => {
      const id = await device();
      await issue(id);
      const forged = sas(randomBytes(32), id);
      assert.equal((await identity(forged)).status, 401);
      await refused(id, forged, 'bad_signature');
      assert.equal((await t.client().get('/device/v1/identity')).status, 401);
      assert.equal((await identity('SharedAccessSignature sr=x')).status, 401);
      await refused(id, 'Bearer nothing', 'malformed');
    });

    it('refuses a token whose expiry is further ahead than the maximum lifetime (it would be replayable for long)', async () => {
      const id = await device();
      const { key } = await issue(id);
      assert.equal((await identity(sas(key, id, 3600))).status, 200);
      const longLived = sas(key, id, 3 * 3600);
      assert.equal((await identity(longLived)).status, 401);
      await refused(id, longLived, 'lifetime_too_long');
    });

    it("refuses device A's token presented as device B, and A's token edited to name B", async () => {
      const [a, b] = [await device(), await device()];
      const keyA = (await issue(a)).key;
      await issue(b);
      const tokenA = sas(keyA, a);
      await refused(b, tokenA, 'malformed');
      const edited = tokenA.replace(encodeURIComponent(deviceResource(a)), encodeURIComponent(deviceResource(b)));
      assert.notEqual(edited, tokenA);
      assert.equal((await identity(edited)).status, 401);
      await refused(b, edited, 'bad_signature');
      await refused('no-such-device', sas(keyA, 'no-such-device'), 'unknown_device');
    });

    it('rotation refuses the old key at once, or accepts it during the grace period and refuses it after', async () => {
      const id = await device();
      const first = await issue(id);
      const second = await issue(id);
      assert.deepEqual([second.version, second.rotated, second.previousKeyValidUntil], [2, true, null]);
      await refused(id, sas(first.key, id), 'bad_signature');
      assert.equal((await t.platform.devices.symmetricKeys.authenticate(id, sas(second.key, id))).credential.type, 'symmetric_key');

      const third = await issue(id, { graceSeconds: 600 });
      assert.equal(Date.parse(third.previousKeyValidUntil!), t.clock.now() + 600_000);
      const during = await identity(sas(second.key, id));
      assert.equal(during.status, 200, during.text);
      assert.equal(during.body.credential.keyVersion, 2);
      assert.equal((await identity(sas(third.key, id))).body.credential.keyVersion, 3);
      t.clock.advance(601_000);
      await refused(id, sas(second.key, id), 'bad_signature');
      assert.equal((await identity(sas(third.key, id))).status, 200);

      const tooLong = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, { graceSeconds: 8 * 24 * 3600 }, { token });
      assert.equal(tooLong.status, 400, tooLong.text);
      assert.equal((await audited('device.symmetric_key_rotated', id)).length, 2);
    });

    it('returns a quarantined device (the caller decides) and refuses a disabled or retired one', async () => {
      const id = await device();
      const { key } = await issue(id);
      assert.equal((await lifecycle(id, 'quarantine')).status, 200);
      assert.equal((await identity(sas(key, id))).body.status, 'quarantined');
      await stepUp(t, owner, token); // disable and retire need a recent step-up
      assert.equal((await lifecycle(id, 'disable')).status, 200);
      assert.equal((await identity(sas(key, id))).status, 401);
      await refused(id, sas(key, id), 'device_disabled');
      const again = await t.client().post(`/api/v1/devices/${id}/symmetric-key`, {}, { token });
      assert.equal(again.status, 409, again.text);
      assert.equal((await lifecycle(id, 'retire')).status, 200);
      await refused(id, sas(key, id), 'device_retired');
    });

    it('derives device keys as Azure DPS does (checked with openssl); a derived-key device registers itself, then authenticates', async () => {
      const created = await createGroup('factory-1');
      assert.equal(created.status, 201, created.text);
      const group = created.body;
      const registrationId = 'DPS-0001';
      const hexKey = Buffer.from(group.key, 'base64').toString('hex');
      const openssl = await ssl.run(['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${hexKey}`], registrationId);
      assert.equal(openssl.ok, true, openssl.output);
      const derived = deriveDeviceKey(group.key, registrationId);
      assert.equal(openssl.output.trim().split(/\s+/).pop(), derived.toString('hex'));

      const register = (regId: string, key: Buffer | string, body = { groupId: group.id, registrationId: regId }) =>
        t.client().post('/device/v1/registrations', body, {
          headers: { authorization: createToken(key, registrationResource(group.id, regId), seconds() + 600) },
        });
      const first = await register(registrationId, derived);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.created, true);
      const deviceId = first.body.deviceId;
      const me = await identity(sas(derived, deviceId));
      assert.equal(me.status, 200, me.text);
      assert.deepEqual([me.body.serial, me.body.productId, me.body.status], [registrationId, product, 'active']);
      const again = await register(registrationId, derived);
      assert.deepEqual(again.body, { deviceId, created: false });
      assert.equal((await audited('device.symmetric_key_registered', deviceId)).length, 1);

      // A device an operator registered beforehand (pending) is found and activated, not duplicated.
      const pending = await device('DPS-0002');
      const second = await register('DPS-0002', deriveDeviceKey(group.key, 'DPS-0002'));
      assert.deepEqual(second.body, { deviceId: pending, created: false });
      assert.equal((await t.client().get(`/api/v1/devices/${pending}`, { token })).body.status, 'active');

      // The group key itself, another serial's derived key, or a body naming another serial: refused.
      assert.equal((await register('DPS-0003', group.key)).status, 401);
      assert.equal((await register('DPS-0003', deriveDeviceKey(group.key, 'DPS-0004'))).status, 401);
      assert.equal(
        (await register('DPS-0003', deriveDeviceKey(group.key, 'DPS-0003'), { groupId: group.id, registrationId: 'DPS-0005' })).status,
        401,
      );
      assert.equal(
        (await t.platform.db.selectFrom('devices').select('id').where('serial', 'in', ['DPS-0003', 'DPS-0004', 'DPS-0005']).execute())
          .length,
        0,
      );
    });

    it('refuses registration through a disabled group, and disabling twice', async () => {
      const group = (await createGroup('to-disable')).body;
      const disabled = await t.client().post(`/api/v1/enrollment-groups/${group.id}/disable`, undefined, { token });
      assert.equal(disabled.status, 200, disabled.text);
      assert.ok(disabled.body.disabledAt);
      const res = await t.client().post(
        '/device/v1/registrations',
        { groupId: group.id, registrationId: 'LATE-1' },
        {
          headers: {
            authorization: createToken(deriveDeviceKey(group.key, 'LATE-1'), registrationResource(group.id, 'LATE-1'), seconds() + 600),
          },
        },
      );
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.error.code, ErrorCodes.enrollmentGroupDisabled);
      assert.equal((await audited('device.registration_refused', group.id)).length, 1);
      assert.equal((await t.client().post(`/api/v1/enrollment-groups/${group.id}/disable`, undefined, { token })).status, 409);
      const listed = await t.client().get('/api/v1/enrollment-groups', { token });
      assert.ok(listed.body.groups.some((g: { id: string; disabledAt: string | null }) => g.id === group.id && g.disabledAt));
    });

    it("cannot take over another organization's device by registering its serial, nor see or disable its groups", async () => {
      const victim = await device('SHARED-1', tokenB, productB);
      const victimKey = (await issue(victim, {}, tokenB)).key;
      const group = (await createGroup('hijack')).body;
      const derived = deriveDeviceKey(group.key, 'SHARED-1');
      const res = await t
        .client()
        .post(
          '/device/v1/registrations',
          { groupId: group.id, registrationId: 'SHARED-1' },
          { headers: { authorization: createToken(derived, registrationResource(group.id, 'SHARED-1'), seconds() + 600) } },
        );
      assert.equal(res.status, 200, res.text);
      assert.notEqual(res.body.deviceId, victim);
      await refused(victim, sas(derived, victim), 'bad_signature');
      const still = await t.platform.devices.symmetricKeys.authenticate(victim, sas(victimKey, victim));
      assert.equal(still.organizationId, (await t.platform.accounts.store.organizationBySlug(ORG_B))!.id);
      assert.equal((await t.client().get('/api/v1/enrollment-groups', { token: tokenB })).body.groups.length, 0);
      assert.equal((await t.client().post(`/api/v1/enrollment-groups/${group.id}/disable`, undefined, { token: tokenB })).status, 404);
      assert.equal((await t.client().post(`/api/v1/devices/${victim}/symmetric-key`, {}, { token })).status, 404);
    });

    it('keeps keys sealed: the raw rows hold neither the key nor its encodings, and another master key opens nothing', async () => {
      const id = await device();
      const { key } = await issue(id);
      const group = (await createGroup('sealed')).body;
      const deviceRow = await t.platform.db
        .selectFrom('device_symmetric_keys')
        .select(['version', 'sealed_key'])
        .where('device_id', '=', id)
        .executeTakeFirstOrThrow();
      const groupRow = await t.platform.db
        .selectFrom('enrollment_groups')
        .select('sealed_key')
        .where('id', '=', group.id)
        .executeTakeFirstOrThrow();
      const other = new SecretBox(randomBytes(32));
      for (const [secret, sealed, context] of [
        [key, deviceRow.sealed_key, keyContext(id, deviceRow.version)],
        [group.key, groupRow.sealed_key, groupContext(group.id)],
      ] as const) {
        const bytes = Buffer.from(secret, 'base64');
        for (const encoding of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('latin1')])
          assert.equal(sealed.includes(encoding), false);
        assert.deepEqual(t.platform.box.open(sealed, context), bytes, 'the platform opens it: the check above looked at the right value');
        assert.throws(
          () => other.open(sealed, context),
          (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.wrong_master_key',
        );
        const relabelled = sealed.replace(/^v2\.\w+\./, `v2.${other.keyId}.`);
        assert.throws(
          () => other.open(relabelled, context),
          (e: unknown) => e instanceof KeyCustodyError && e.code === 'keys.sealed_tampered',
        );
        // Copied onto another device's row, it does not open either.
        assert.throws(() => t.platform.box.open(sealed, keyContext('another-device', 1)), KeyCustodyError);
      }
      if (engine.engine === 'sqlite') {
        for (const file of ['bulwark.db', 'bulwark.db-wal'].map((f) => join(t.database.dataDir, f)).filter(existsSync)) {
          const raw = readFileSync(file);
          for (const secret of [key, group.key]) {
            assert.equal(raw.includes(Buffer.from(secret, 'base64')), false);
            assert.equal(raw.includes(Buffer.from(secret)), false);
          }
        }
      }
    });

    it('master-key rotation re-wraps device and group keys, which keep working', async () => {
      const id = await device();
      const { key } = await issue(id);
      const group = (await createGroup('rotated')).body;
      const report = await rotateMasterKey({
        dataDir: t.database.dataDir,
        db: t.platform.db,
        box: t.platform.box,
        audit: t.platform.audit,
        env: {},
      });
      assert.ok(report.rewrapped['device_symmetric_keys.sealed_key']! >= 1, JSON.stringify(report.rewrapped));
      assert.ok(report.rewrapped['enrollment_groups.sealed_key']! >= 1, JSON.stringify(report.rewrapped));
      const sealed = await t.platform.db.selectFrom('device_symmetric_keys').select('sealed_key').execute();
      for (const row of sealed) assert.ok(row.sealed_key.startsWith(`v2.${report.keyId}.`));
      assert.equal((await identity(sas(key, id))).status, 200);
      const res = await t.client().post(
        '/device/v1/registrations',
        { groupId: group.id, registrationId: 'AFTER-ROTATION' },
        {
          headers: {
            authorization: createToken(
              deriveDeviceKey(group.key, 'AFTER-ROTATION'),
              registrationResource(group.id, 'AFTER-ROTATION'),
              seconds() + 600,
            ),
          },
        },
      );
      assert.equal(res.status, 200, res.text);
    });
  });
}
