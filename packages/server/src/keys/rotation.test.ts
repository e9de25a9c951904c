import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newUserRow } from '../accounts/store.js';
import { ManualClock } from '../clock.js';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform, type Platform } from '../platform.js';
import { openDatabase } from '../storage/database.js';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { KeyCustodyError, SecretBox } from './custody.js';
import { loadMasterKey, masterKeyPath, previousMasterKeyPath, readKeyFile } from './master-key.js';
import { rotateMasterKey } from './rotation.js';
import { SEALED_COLUMNS } from './sealed-column-store.js';
import { readSealedFile, sealedFiles } from './sealed-values.js';
import { SigningKeys } from './signing-keys.js';

const USERS = 30;

/** A value as the v1 format sealed it (AES-256-GCM directly under the master key): data dirs from before envelopes. */
function sealV1(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return ['v1', createHash('sha256').update(key).digest('hex').slice(0, 12), iv.toString('base64url'), body.toString('base64url')].join(
    '.',
  );
}

const isCode = (code: string) => (e: unknown) => e instanceof KeyCustodyError && e.code === code;

interface Fixture {
  database: TestDatabase;
  platform: Platform;
  /** TOTP secret of each user, in the clear, to compare with what opens. */
  secrets: Map<string, string>;
  signed: Array<{ keyId: string; data: Buffer; signature: string }>;
  /** Secrets a user may have while their enrolment races the readers. */
  inFlight: Set<string>;
}

async function setUp(database: TestDatabase): Promise<Fixture> {
  const clock = new ManualClock(Date.now());
  const config = loadConfig({
    dataDir: database.dataDir,
    env: {},
    overrides: { database: { url: database.url, poolSize: 5 }, log: { level: 'silent' } } as never,
  });
  const init = await initialize(config, DEFAULT_INIT, { database, clock, env: {} });
  const platform = await openPlatform(config, { database, clock, env: {} });
  const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
  const key = readKeyFile(masterKeyPath(database.dataDir));
  const secrets = new Map<string, string>();
  for (let i = 0; i < USERS; i++) {
    const row = newUserRow({
      organizationId: org!.id,
      kind: 'consumer',
      email: `u${i}@example.com`,
      name: 'U',
      role: null,
      passwordHash: 'x',
      emailVerifiedAt: null,
      mustChangePassword: false,
      now: clock.now(),
    });
    const secret = randomBytes(20).toString('hex');
    // A third of the secrets were sealed before envelope encryption (v1).
    row.mfa_secret = i % 3 === 0 ? sealV1(key, secret, `user:${row.id}:totp`) : platform.box.seal(secret, `user:${row.id}:totp`);
    await platform.accounts.store.insertUser(row);
    secrets.set(row.id, secret);
  }
  const signed = [];
  for (const purpose of ['audit-checkpoint', 'other']) {
    const signer = await platform.signingKeys.current(purpose);
    const data = Buffer.from(`signed by ${purpose}`);
    signed.push({ keyId: signer.id, data, signature: signer.sign(data) });
  }
  return { database, platform, secrets, signed, inFlight: new Set() };
}

/** Opens every sealed value with a box, as a server would. */
async function readEverything(f: Fixture, box: SecretBox): Promise<void> {
  const users = await f.database.db.selectFrom('users').select(['id', 'mfa_secret']).where('mfa_secret', 'is not', null).execute();
  assert.equal(users.length, USERS);
  for (const u of users) {
    const opened = box.openText(u.mfa_secret!, `user:${u.id}:totp`);
    if (!f.inFlight.has(opened)) assert.equal(opened, f.secrets.get(u.id));
  }
  const verifier = new SigningKeys(f.database.db, box, f.platform.clock);
  for (const s of f.signed) assert.equal(await verifier.verify(s.keyId, s.data, s.signature), true);
  for (const file of sealedFiles(f.database.dataDir)) assert.match(box.openText(readSealedFile(file), file.context), /BEGIN PRIVATE KEY/);
}

async function sealedValues(f: Fixture): Promise<string[]> {
  const values: string[] = [];
  for (const column of SEALED_COLUMNS) values.push(...(await column.page(f.database.db, 'none', '', 10_000)).map((r) => r.sealed));
  return [...values, ...sealedFiles(f.database.dataDir).map(readSealedFile)];
}

for (const engine of ENGINES) {
  describe(`master-key rotation on ${engine.engine}`, { skip: engine.skip, concurrency: 1 }, () => {
    let f: Fixture;

    before(async () => {
      f = await setUp(await engine.create());
    });
    after(async () => {
      await f?.database.close();
    });

    it('re-wraps every sealed value while readers keep opening them, then reads everything back', async () => {
      const dataDir = f.database.dataDir;
      const oldKeyId = f.platform.box.keyId;
      // A server started before the rotation: it holds only the old key until it meets the new one.
      const serverBox = loadMasterKey(dataDir, {});
      const serverKeys = new SigningKeys(f.database.db, serverBox, f.platform.clock);
      let reads = 0;
      let running = true;
      const readers = (async () => {
        while (running) {
          await readEverything(f, serverBox);
          assert.ok(await serverKeys.current('audit-checkpoint'), 'the checkpoint key opens');
          reads++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      // And a user enrolling TOTP meanwhile, sealed by that server.
      const enrolling = [...f.secrets.keys()][1]!;
      const writer = (async () => {
        for (let i = 0; i < 5; i++) {
          const secret = randomBytes(20).toString('hex');
          f.inFlight.add(secret);
          await f.database.db
            .updateTable('users')
            .set({ mfa_secret: serverBox.seal(secret, `user:${enrolling}:totp`) })
            .where('id', '=', enrolling)
            .execute();
          f.secrets.set(enrolling, secret);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const report = await rotateMasterKey({ dataDir, db: f.database.db, box: f.platform.box, audit: f.platform.audit, env: {}, batch: 4 });
      await writer;
      running = false;
      await readers;
      f.inFlight.clear();
      assert.ok(reads > 0, 'readers ran during the rotation');

      assert.equal(report.previousKeyId, oldKeyId);
      assert.notEqual(report.keyId, oldKeyId);
      assert.equal(report.resumed, false);
      // The user enrolling meanwhile may have replaced their secret under the new key first.
      assert.ok(report.rewrapped['users.mfa_secret']! >= USERS - 1, JSON.stringify(report.rewrapped));
      assert.equal(report.rewrapped['signing_keys.private_key'], 2);
      assert.equal(report.rewrapped['pki/ca.key.sealed'], 1);
      assert.equal(existsSync(previousMasterKeyPath(dataDir)), false, 'the previous key is removed once done');
      for (const value of await sealedValues(f)) assert.ok(value.startsWith(`v2.${report.keyId}.`), value.slice(0, 20));

      const fresh = loadMasterKey(dataDir, {});
      assert.deepEqual(fresh.keyIds(), [report.keyId]);
      await readEverything(f, fresh);
      const audited = await f.database.db
        .selectFrom('audit_log')
        .select(['action', 'details'])
        .where('action', '=', 'keys.master_rotated')
        .execute();
      assert.equal(audited.length, 1);
      const verified = await f.platform.audit.verify();
      assert.equal(verified.ok, true, JSON.stringify(verified.problems));
    });

    it('a rotation that crashes halfway leaves everything readable, and running it again finishes', async () => {
      const dataDir = f.database.dataDir;
      const box = loadMasterKey(dataDir, {});
      const rewrap = box.rewrap.bind(box);
      let calls = 0;
      box.rewrap = (sealed, context) => {
        if (++calls > 7) throw new Error('simulated crash');
        return rewrap(sealed, context);
      };
      await assert.rejects(
        rotateMasterKey({ dataDir, db: f.database.db, box, audit: f.platform.audit, env: {}, batch: 3 }),
        /simulated crash/,
      );
      assert.ok(existsSync(previousMasterKeyPath(dataDir)), 'the previous key stays until done');
      const halfway = loadMasterKey(dataDir, {});
      assert.equal(halfway.keyIds().length, 2);
      const keyIds = new Set((await sealedValues(f)).map((v) => v.split('.')[1]));
      assert.equal(keyIds.size, 2, 'some values under each key');
      await readEverything(f, halfway);

      const report = await rotateMasterKey({
        dataDir,
        db: f.database.db,
        box: loadMasterKey(dataDir, {}),
        audit: f.platform.audit,
        env: {},
      });
      assert.equal(report.resumed, true);
      assert.equal(report.keyId, halfway.keyId);
      assert.equal(existsSync(previousMasterKeyPath(dataDir)), false);
      for (const value of await sealedValues(f)) assert.ok(value.startsWith(`v2.${report.keyId}.`), value.slice(0, 20));
      await readEverything(f, loadMasterKey(dataDir, {}));
    });

    it('reading the database without the master key gives nothing', async () => {
      const values = await sealedValues(f);
      const otherKey = new SecretBox(randomBytes(32));
      for (const value of values) assert.throws(() => otherKey.open(value, 'any'), isCode('keys.wrong_master_key'));
      // Relabelled with the attacker's key id, the wrapped data key still does not open.
      const [user] = await f.database.db
        .selectFrom('users')
        .select(['id', 'mfa_secret'])
        .where('mfa_secret', 'is not', null)
        .limit(1)
        .execute();
      const relabelled = user!.mfa_secret!.replace(/^v2\.\w+\./, `v2.${otherKey.keyId}.`);
      assert.throws(() => otherKey.open(relabelled, `user:${user!.id}:totp`), isCode('keys.sealed_tampered'));
      // A platform opened on the same database with another master key verifies no checkpoint key.
      const verifier = new SigningKeys(f.database.db, otherKey, f.platform.clock);
      for (const s of f.signed) assert.equal(await verifier.verify(s.keyId, s.data, s.signature), false);
      if (engine.engine === 'sqlite') {
        const copy = join(f.database.dataDir, 'stolen.db');
        for (const suffix of ['', '-wal']) {
          if (existsSync(join(f.database.dataDir, `bulwark.db${suffix}`)))
            copyFileSync(join(f.database.dataDir, `bulwark.db${suffix}`), `${copy}${suffix}`);
        }
        const stolen = openDatabase({ url: `sqlite:${copy}`, dataDir: f.database.dataDir });
        try {
          const rows = await stolen.db.selectFrom('users').select(['id', 'mfa_secret']).where('mfa_secret', 'is not', null).execute();
          assert.equal(rows.length, USERS);
          for (const r of rows) assert.throws(() => otherKey.openText(r.mfa_secret!, `user:${r.id}:totp`), isCode('keys.wrong_master_key'));
        } finally {
          await stolen.close();
        }
        for (const file of [copy, `${copy}-wal`].filter((p) => existsSync(p))) {
          const bytes = readFileSync(file);
          for (const secret of f.secrets.values())
            assert.equal(bytes.includes(secret), false, 'no secret in the clear in the database files');
        }
      }
    });

    it('refuses to rotate a master key that comes from the environment', async () => {
      await assert.rejects(
        rotateMasterKey({
          dataDir: f.database.dataDir,
          db: f.database.db,
          box: f.platform.box,
          audit: f.platform.audit,
          env: { BULWARK_MASTER_KEY: randomBytes(32).toString('base64') },
        }),
        isCode('keys.master_key_from_env'),
      );
    });
  });
}
