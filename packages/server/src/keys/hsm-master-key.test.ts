/**
 * The master key on a PKCS#11 token (SoftHSM, one token for this file), on both engines:
 * `bulwark init --hsm-master-key` generates it on the token and writes no key file, the platform
 * seals through it (TOTP secrets, device keys, signing keys, the server key), nothing opens
 * without the token and its PIN or under a software key, and `rotate-master` moves every sealed
 * value to a new key on the token while a server keeps reading.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'otplib';
import pkcs11js from 'pkcs11js';
import { newUserRow } from '../accounts/store.js';
import { cliActor } from '../accounts/roles.js';
import { createToken, deviceResource } from '../devices/sas.js';
import { BulwarkError } from '../errors.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize, type InitResult } from '../runner/init.js';
import { openPlatform, type Platform } from '../platform.js';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { SecretBox } from './custody.js';
import {
  createMasterKeyFile,
  derivationSecretFile,
  loadMasterKey,
  masterKeyPath,
  previousTokenMasterKeyPath,
  readTokenKeyLabel,
  tokenMasterKeyPath,
} from './master-key.js';
import { TokenAccess } from './pkcs11.js';
import { rotateMasterKey } from './rotation.js';
import { SEALED_COLUMNS } from './sealed-column-store.js';
import { readSealedFile, sealedFiles } from './sealed-values.js';

const hasCode = (code: string) => (e: unknown) => e instanceof BulwarkError && e.code === code;

describe('master key on a PKCS#11 token', { skip: softHsmSkip, concurrency: 1 }, () => {
  let testToken: TestToken;
  before(() => {
    testToken = createTestToken('bulwark-master');
  });
  after(() => testToken?.remove());

  for (const engine of ENGINES) {
    describe(`on ${engine.engine}`, { skip: engine.skip, concurrency: 1 }, () => {
      let database: TestDatabase;
      let config: Config;
      let init: InitResult;
      let platform: Platform;
      let dataDir: string;
      const env = () => ({ BULWARK_PKCS11_PIN: testToken.pin });
      const token = () => platform.hsm!.get();
      // What the tests seal through the platform, in the clear, to compare with what opens.
      const sealedThrough = { userId: '', totpSecret: '', deviceId: '', deviceKey: '' };

      before(async () => {
        database = await engine.create();
        dataDir = database.dataDir;
        config = loadConfig({
          dataDir,
          env: { BULWARK_KEYS_PKCS11_TOKEN_LABEL: testToken.label },
          overrides: { database: { url: database.url, poolSize: 5 }, log: { level: 'silent' } } as never,
        });
        init = await initialize(config, { ...DEFAULT_INIT, hsmMasterKey: true }, { database, env: env() });
        platform = await openPlatform(config, { database, env: env() });
      });
      after(async () => {
        await platform?.close();
        await database?.close();
      });

      /** Every sealed value of the deployment: database columns, DIR/pki files and the derivation secret. */
      async function sealedValues(): Promise<Array<{ sealed: string; context: string }>> {
        const values: Array<{ sealed: string; context: string }> = [];
        for (const column of SEALED_COLUMNS)
          values.push(
            ...(await column.page(database.db, 'none', '', 10_000)).map((r) => ({ sealed: r.sealed, context: column.context(r.id) })),
          );
        for (const file of [...sealedFiles(dataDir), derivationSecretFile(dataDir)])
          values.push({ sealed: readSealedFile(file), context: file.context });
        return values;
      }

      async function sealedTotp(): Promise<string> {
        return (await platform.accounts.store.userById(sealedThrough.userId))!.mfa_secret!;
      }

      it('init generates the master key on the token and writes no key file: the data directory records only its label', async () => {
        assert.equal(init.masterKey, 'hsm');
        assert.equal(init.masterKeyCreated, true);
        assert.equal(existsSync(masterKeyPath(dataDir)), false, 'no keys/master.key');
        assert.deepEqual(readdirSync(join(dataDir, 'keys')).sort(), ['derivation.sealed', 'master.pkcs11']);
        const record = JSON.parse(readFileSync(tokenMasterKeyPath(dataDir), 'utf8'));
        assert.deepEqual(Object.keys(record), ['label']);
        const kek = token().kek(record.label);
        assert.equal(platform.box.keyId, kek.id);
        assert.match(kek.id, /^h[0-9a-f]{11}$/);
        assert.throws(() => token().attribute(kek.handle, pkcs11js.CKA_VALUE), /CKR_ATTRIBUTE_SENSITIVE/);
        assert.deepEqual(token().attribute(kek.handle, pkcs11js.CKA_EXTRACTABLE), Buffer.from([0]));

        // Run again (without the flag, as `bulwark start` would): the data directory keeps its key on the token.
        const again = await initialize(config, DEFAULT_INIT, { database, env: env() });
        assert.deepEqual([again.masterKey, again.masterKeyCreated], ['hsm', false]);
        assert.equal(existsSync(masterKeyPath(dataDir)), false);
        assert.equal(readTokenKeyLabel(tokenMasterKeyPath(dataDir)), record.label);
      });

      it('seals a TOTP secret and a device key through the platform under the token key, and both read back', async () => {
        const org = (await platform.accounts.store.listOrganizations())[0]!;
        const row = newUserRow({
          organizationId: org.id,
          kind: 'consumer',
          email: 'totp@example.com',
          name: 'T',
          role: null,
          passwordHash: 'x',
          emailVerifiedAt: null,
          mustChangePassword: false,
          now: Date.now(),
        });
        await platform.accounts.store.insertUser(row);
        sealedThrough.userId = row.id;
        const actor = cliActor(org.id, row.id);
        const enrolment = await platform.accounts.mfa.beginEnrollment(actor, 'Bulwark');
        const stored = await sealedTotp();
        assert.ok(stored.startsWith(`v2.${platform.box.keyId}.`), stored.slice(0, 20));
        assert.equal(stored.includes(enrolment.secret), false);
        // The platform opens it to check the first code.
        const code = await generate({ secret: enrolment.secret, epoch: Math.floor(Date.now() / 1000) });
        assert.equal((await platform.accounts.mfa.confirmEnrollment(actor, code, platform.db)).length > 0, true);

        const operator = cliActor(org.id);
        const product = await platform.devices.service.createProduct(operator, { name: 'Sensor' });
        const device = await platform.devices.service.register(operator, { serial: 'HSM-1', productId: product.id });
        const issued = await platform.devices.symmetricKeys.issueKey(operator, device.id);
        const keyRow = await database.db
          .selectFrom('device_symmetric_keys')
          .select('sealed_key')
          .where('device_id', '=', device.id)
          .executeTakeFirstOrThrow();
        assert.ok(keyRow.sealed_key.startsWith(`v2.${platform.box.keyId}.`));
        const identity = await platform.devices.symmetricKeys.authenticate(
          device.id,
          createToken(issued.key, deviceResource(device.id), Math.floor(Date.now() / 1000) + 600),
        );
        assert.equal(identity.deviceId, device.id);
        Object.assign(sealedThrough, { totpSecret: enrolment.secret, deviceId: device.id, deviceKey: issued.key });

        // Everything sealed here names the token key: the audit signing key, the server key, the derivation secret.
        await platform.signingKeys.current('audit-checkpoint');
        for (const value of await sealedValues())
          assert.ok(value.sealed.startsWith(`v2.${platform.box.keyId}.`), `${value.context}: ${value.sealed.slice(0, 20)}`);
      });

      it('the sealed values open under no software master key, and relabelled for one they fail authentication', async () => {
        const software = new SecretBox(randomBytes(32));
        const values = await sealedValues();
        assert.ok(values.length >= 4, String(values.length));
        for (const { sealed, context } of values) {
          assert.throws(() => software.open(sealed, context), hasCode('keys.wrong_master_key'));
          assert.throws(
            () => software.open(sealed.replace(/^v2\.\w+\./, `v2.${software.keyId}.`), context),
            hasCode('keys.sealed_tampered'),
          );
        }
      });

      it('refuses to start without the PIN, with a wrong PIN, without the token or its key, or with a software master key beside it', async () => {
        await platform.close();
        const record = tokenMasterKeyPath(dataDir);
        const label = readTokenKeyLabel(record);
        try {
          const open = (c: Config, e: NodeJS.ProcessEnv) => openPlatform(c, { database, env: e });
          await assert.rejects(
            open(config, {}),
            (e: unknown) => hasCode('config.pkcs11_pin_missing')(e) && /BULWARK_PKCS11_PIN/.test((e as Error).message),
          );
          await assert.rejects(
            open(config, { BULWARK_PKCS11_PIN: 'not-the-pin' }),
            (e: unknown) => hasCode('keys.hsm_error')(e) && /CKR_PIN_INCORRECT/.test((e as Error).message),
          );
          await assert.rejects(
            open({ ...config, keys: { pkcs11: { tokenLabel: 'no-such-token' } } }, env()),
            (e: unknown) => hasCode('keys.hsm_error')(e) && /No PKCS#11 token labelled "no-such-token"/.test((e as Error).message),
          );
          await assert.rejects(open({ ...config, keys: {} }, env()), hasCode('config.pkcs11_missing'));
          // A record naming a key the token does not hold (another token, or the key deleted).
          writeFileSync(record, JSON.stringify({ label: 'bulwark-master-000000000000' }));
          await assert.rejects(open(config, env()), hasCode('keys.master_key_missing'));
          writeFileSync(record, JSON.stringify({ label }));
          // A software key slipped in beside the token key is refused, not used.
          await assert.rejects(
            open(config, { ...env(), BULWARK_MASTER_KEY: randomBytes(32).toString('base64') }),
            hasCode('keys.master_key_conflict'),
          );
          createMasterKeyFile(dataDir);
          await assert.rejects(open(config, env()), hasCode('keys.master_key_conflict'));
          rmSync(masterKeyPath(dataDir));
          // No failed start left the token logged in: a wrong PIN is still asked for and refused.
          const access = new TokenAccess(() => ({ tokenLabel: testToken.label, pin: 'not-the-pin' }));
          assert.throws(() => access.get(), /CKR_PIN_INCORRECT/);
        } finally {
          platform = await openPlatform(config, { database, env: env() });
        }
        assert.equal(platform.box.openText(await sealedTotp(), `user:${sealedThrough.userId}:totp`), sealedThrough.totpSecret);
      });

      it('derives the CSRF key from a secret sealed under the token key: the same for every node and restart', () => {
        const csrf = platform.box.deriveKey('csrf');
        assert.equal(csrf.length, 32);
        assert.deepEqual(loadMasterKey(dataDir, {}, token).deriveKey('csrf'), csrf);
        assert.notDeepEqual(platform.box.deriveKey('other'), csrf);
        // Only the token key opens the derivation secret.
        const derivation = derivationSecretFile(dataDir);
        assert.throws(
          () => new SecretBox(randomBytes(32)).open(readSealedFile(derivation), derivation.context),
          hasCode('keys.wrong_master_key'),
        );
      });

      it('rotate-master generates a new key on the token and re-wraps every sealed value while a server keeps reading; all read back', async () => {
        const oldLabel = readTokenKeyLabel(tokenMasterKeyPath(dataDir));
        const oldKeyId = platform.box.keyId;
        const csrf = platform.box.deriveKey('csrf');
        const countBefore = (await sealedValues()).length;
        // A server started before the rotation: it holds only the old key until it meets the new one.
        const serverBox = loadMasterKey(dataDir, {}, token);
        let reads = 0;
        let running = true;
        const reader = (async () => {
          while (running) {
            assert.equal(serverBox.openText(await sealedTotp(), `user:${sealedThrough.userId}:totp`), sealedThrough.totpSecret);
            reads++;
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        const report = await rotateMasterKey({
          dataDir,
          db: database.db,
          box: platform.box,
          audit: platform.audit,
          env: {},
          token,
          batch: 2,
        });
        running = false;
        await reader;
        assert.ok(reads > 0, 'the reader ran during the rotation');

        assert.equal(report.previousKeyId, oldKeyId);
        assert.match(report.keyId, /^h[0-9a-f]{11}$/);
        assert.notEqual(report.keyId, oldKeyId);
        assert.equal(report.resumed, false);
        assert.equal(report.retiredTokenKeyLabel, oldLabel);
        assert.notEqual(readTokenKeyLabel(tokenMasterKeyPath(dataDir)), oldLabel);
        assert.equal(existsSync(previousTokenMasterKeyPath(dataDir)), false);
        assert.equal(existsSync(masterKeyPath(dataDir)), false, 'still no key file');
        assert.equal(token().has('secret', oldLabel), true, 'the old key stays on the token for older backups');
        for (const name of ['users.mfa_secret', 'device_symmetric_keys.sealed_key', 'keys/derivation.sealed', 'pki/server.key.sealed'])
          assert.equal(report.rewrapped[name], 1, `${name}: ${JSON.stringify(report.rewrapped)}`);
        assert.ok(report.rewrapped['signing_keys.private_key']! >= 1);

        const values = await sealedValues();
        assert.equal(values.length, countBefore);
        for (const value of values)
          assert.ok(value.sealed.startsWith(`v2.${report.keyId}.`), `${value.context}: ${value.sealed.slice(0, 20)}`);
        // A node started now holds only the new key, and opens everything.
        const fresh = loadMasterKey(dataDir, {}, token);
        assert.deepEqual(fresh.keyIds(), [report.keyId]);
        for (const { sealed, context } of values) assert.ok(fresh.open(sealed, context).length > 0);
        assert.equal(fresh.openText(await sealedTotp(), `user:${sealedThrough.userId}:totp`), sealedThrough.totpSecret);
        assert.deepEqual(fresh.deriveKey('csrf'), csrf, 'the derivation secret survives the rotation: browser sessions stay valid');
        const identity = await platform.devices.symmetricKeys.authenticate(
          sealedThrough.deviceId,
          createToken(sealedThrough.deviceKey, deviceResource(sealedThrough.deviceId), Math.floor(Date.now() / 1000) + 600),
        );
        assert.equal(identity.deviceId, sealedThrough.deviceId);
        const audited = await database.db.selectFrom('audit_log').select('action').where('action', '=', 'keys.master_rotated').execute();
        assert.equal(audited.length, 1);
        const verified = await platform.audit.verify();
        assert.equal(verified.ok, true, JSON.stringify(verified.problems));
      });

      it('a rotation that crashes halfway leaves everything readable, and running it again finishes without another key', async () => {
        const box = loadMasterKey(dataDir, {}, token);
        const rewrap = box.rewrap.bind(box);
        let calls = 0;
        box.rewrap = (sealed, context) => {
          if (++calls > 2) throw new Error('simulated crash');
          return rewrap(sealed, context);
        };
        await assert.rejects(
          rotateMasterKey({ dataDir, db: database.db, box, audit: platform.audit, env: {}, token, batch: 1 }),
          /simulated crash/,
        );
        assert.ok(existsSync(previousTokenMasterKeyPath(dataDir)), 'the previous key stays recorded until done');
        const halfway = loadMasterKey(dataDir, {}, token);
        assert.equal(halfway.keyIds().length, 2);
        const values = await sealedValues();
        assert.equal(new Set(values.map((v) => v.sealed.split('.')[1])).size, 2, 'some values under each key');
        for (const { sealed, context } of values) halfway.open(sealed, context);

        const newLabel = readTokenKeyLabel(tokenMasterKeyPath(dataDir));
        const report = await rotateMasterKey({
          dataDir,
          db: database.db,
          box: loadMasterKey(dataDir, {}, token),
          audit: platform.audit,
          env: {},
          token,
        });
        assert.equal(report.resumed, true);
        assert.equal(report.keyId, halfway.keyId);
        assert.equal(readTokenKeyLabel(tokenMasterKeyPath(dataDir)), newLabel, 'no second new key');
        assert.equal(existsSync(previousTokenMasterKeyPath(dataDir)), false);
        const fresh = loadMasterKey(dataDir, {}, token);
        for (const { sealed, context } of await sealedValues()) {
          assert.ok(sealed.startsWith(`v2.${report.keyId}.`));
          fresh.open(sealed, context);
        }
      });
    });
  }
});
