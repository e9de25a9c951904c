/**
 * Online Ed25519 signing keys of the deployment, one current key per purpose: audit checkpoints,
 * the TUF image repository's online roles (snapshot, timestamp) and each organization's director.
 * Stored in the database with the private half sealed under the master key so every node can use them.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Database } from '../storage/schema.js';
import { newId } from '../tokens.js';
import type { SecretBox } from './master-key.js';

export interface SigningKey {
  id: string;
  publicKey: KeyObject;
  sign(data: Buffer): string;
}

export class SigningKeys {
  private readonly cache = new Map<string, SigningKey>();
  private readonly verifiers = new Map<string, KeyObject>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

  /**
   * The current key for a purpose, created on first use. Inside a transaction pass it as `db`:
   * SQLite has one connection, so a query outside the open transaction would wait forever.
   */
  async current(purpose: string, db: Kysely<Database> = this.db): Promise<SigningKey> {
    const cached = this.cache.get(purpose);
    if (cached) return cached;
    let row = await db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    const createdHere = !row;
    if (!row) {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const id = newId();
      row = {
        id,
        purpose,
        algorithm: 'ed25519',
        public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        private_key: this.box.seal(privateKey.export({ type: 'pkcs8', format: 'pem' }), `signing-key:${id}`),
        created_at: this.clock.now(),
        retired_at: null,
      };
      await db.insertInto('signing_keys').values(row).execute();
    }
    const privateKey = createPrivateKey(this.box.openText(row.private_key, `signing-key:${row.id}`));
    const key: SigningKey = {
      id: row.id,
      publicKey: createPublicKey(row.public_key),
      sign: (data) => sign(null, data, privateKey).toString('base64'),
    };
    // A key created inside the caller's transaction exists only if that transaction commits: it is
    // cached once it is read back outside one, never before (a rollback would leave a cached key with no row).
    if (!createdHere || db === this.db) this.cache.set(purpose, key);
    return key;
  }

  /**
   * Verifies with any key ever used (retired keys still verify what they signed). The public key
   * is derived from the private half, which must open under the master key: a key row planted by
   * someone who can write the database but does not hold the master key verifies nothing.
   */
  async verify(keyId: string, data: Buffer, signature: string): Promise<boolean> {
    let publicKey = this.verifiers.get(keyId);
    if (!publicKey) {
      const row = await this.db.selectFrom('signing_keys').select(['id', 'private_key']).where('id', '=', keyId).executeTakeFirst();
      if (!row) return false;
      try {
        publicKey = createPublicKey(createPrivateKey(this.box.openText(row.private_key, `signing-key:${row.id}`)));
      } catch {
        return false;
      }
      this.verifiers.set(keyId, publicKey);
    }
    return verify(null, data, publicKey, Buffer.from(signature, 'base64'));
  }
}
