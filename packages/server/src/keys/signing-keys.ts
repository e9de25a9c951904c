/**
 * Online Ed25519 signing keys of the deployment, one current key per purpose: audit checkpoints,
 * the TUF image repository's online roles (snapshot, timestamp) and each organization's director.
 * Stored in the database with the private half sealed under the master key so every node can use
 * them, or, with `keys.pkcs11.onlineSigningKeys`, generated and used on the deployment's PKCS#11
 * token: the row then holds the key's label (`pkcs11:<label>`) and the public half, and no private
 * byte leaves the token.
 *
 * A key may be staged for a purpose before it is used (online key rotation, docs/updates.md
 * "Rotating the online keys"): it is stored under the purpose `pending:<purpose>` and signs nothing
 * until `activatePending` makes it the current key and retires the one before, in the caller's
 * transaction. Retired keys stay (sealed) for the record and still verify what they signed.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.js';
import { newId } from '../tokens.js';
import type { SecretBox } from './master-key.js';
import { Pkcs11Error, type Pkcs11Token } from './pkcs11.js';
import { SigningKeyStore } from './signing-key-store.js';
import type { Executor } from '../storage/executor.js';

/** The private_key column of a key held on the token: this prefix and the key's label. */
const TOKEN_KEY_PREFIX = 'pkcs11:';
/** The purpose a staged key is stored under until it is activated. */
const PENDING_PREFIX = 'pending:';
/**
 * How long a key read outside a transaction is used before the database is asked again whether it
 * is still current: after a rotation on another process or node, this is how long it may go on
 * signing with the retired key (inside a transaction the current key is always read afresh).
 */
export const KEY_RECHECK_MS = 2_000;

export interface SigningKey {
  id: string;
  publicKey: KeyObject;
  sign(data: Buffer): string;
}

export class SigningKeys {
  private readonly cache = new Map<string, { key: SigningKey; checkedAt: number }>();
  private readonly verifiers = new Map<string, KeyObject>();
  private readonly store: SigningKeyStore;

  constructor(
    private readonly db: Executor,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    /** The token new keys are generated on (null: software keys sealed under the master key). */
    private readonly token: (() => Pkcs11Token) | null = null,
  ) {
    this.store = new SigningKeyStore(db);
  }

  /**
   * The current key for a purpose, created on first use. Inside a transaction pass it as `db`:
   * SQLite has one connection, so a query outside the open transaction would wait forever. Inside
   * one the current row is always read (a rotation may have just switched it); outside, a cached
   * key is used for up to KEY_RECHECK_MS before the row is checked again.
   */
  async current(purpose: string, db: Executor = this.db): Promise<SigningKey> {
    const cached = this.cache.get(purpose);
    const outside = db === this.db;
    if (cached && outside && performance.now() - cached.checkedAt < KEY_RECHECK_MS) return cached.key;
    let row = await this.store.newest(purpose, db);
    if (!row) {
      const id = newId();
      row = { id, purpose, algorithm: 'ed25519', created_at: this.clock.now(), retired_at: null, ...this.generate(id, purpose) };
      await this.store.insert(row, db);
    }
    const key = cached?.key.id === row.id ? cached.key : this.keyOf(row);
    // Only what is read outside a transaction is cached: a key read (or created, or activated) inside
    // one exists as the current key only if that transaction commits.
    if (outside) this.cache.set(purpose, { key, checkedAt: performance.now() });
    return key;
  }

  /** Stages a new key for the purpose (`pending:<purpose>`), generated like any other; it signs nothing yet. */
  async createPending(purpose: string, db: Executor = this.db): Promise<SigningKey> {
    const id = newId();
    const row = {
      id,
      purpose: `${PENDING_PREFIX}${purpose}`,
      algorithm: 'ed25519',
      created_at: this.clock.now(),
      retired_at: null,
      ...this.generate(id, `${PENDING_PREFIX}${purpose}`),
    };
    await this.store.insert(row, db);
    return this.keyOf(row);
  }

  /** The key staged for the purpose, or null. Opened like a current key, so a row planted without the master key (or token) is refused. */
  async pending(purpose: string, db: Executor = this.db): Promise<SigningKey | null> {
    const row = await this.store.newest(`${PENDING_PREFIX}${purpose}`, db);
    return row ? this.keyOf(row) : null;
  }

  /**
   * Makes the staged key the current one and retires every key the purpose had (kept for the
   * record, never used to sign again). Returns the retired keys' IDs, or null when the key is no
   * longer staged. Call inside the transaction that also records why (the accepted root): a
   * rollback leaves the rotation pending.
   */
  async activatePending(purpose: string, pendingId: string, db: Executor): Promise<string[] | null> {
    const now = this.clock.now();
    const retired = await this.store.retireAll(purpose, now, db);
    const moved = await this.store.movePurpose(pendingId, `${PENDING_PREFIX}${purpose}`, purpose, db);
    this.cache.delete(purpose);
    // Cancelled meanwhile: the caller rolls its transaction back (the retirement above with it).
    if (!moved) return null;
    return retired;
  }

  /** Retires the key staged for the purpose (kept for the record); returns its ID, or null when none was staged. */
  async cancelPending(purpose: string, db: Executor = this.db): Promise<string | null> {
    const id = await this.store.unretiredId(`${PENDING_PREFIX}${purpose}`, db);
    if (id === undefined) return null;
    await this.store.retire(id, this.clock.now(), db);
    return id;
  }

  /** A new key pair: on the token when one is configured, else in software, sealed. */
  private generate(id: string, purpose: string): { public_key: string; private_key: string } {
    if (this.token) {
      const label = `bulwark-online-${purpose.replace(/[^A-Za-z0-9_-]/g, '-')}-${id.slice(0, 8)}`;
      const signer = this.token().generateKeyPair('ed25519', label);
      return {
        public_key: signer.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        private_key: `${TOKEN_KEY_PREFIX}${label}`,
      };
    }
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return {
      public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      private_key: this.box.seal(privateKey.export({ type: 'pkcs8', format: 'pem' }), `signing-key:${id}`),
    };
  }

  /**
   * The signing key of a row. A token key signs on the token, and its public half is read from the
   * token and must equal the row's: a row someone wrote into the database naming another key is refused.
   */
  private keyOf(row: { id: string; public_key: string; private_key: string }): SigningKey {
    if (row.private_key.startsWith(TOKEN_KEY_PREFIX)) {
      const signer = this.tokenSigner(row.private_key.slice(TOKEN_KEY_PREFIX.length));
      if (!signer.publicKey.equals(createPublicKey(row.public_key)))
        throw new Pkcs11Error(`Signing key ${row.id}: the token's key does not match the public key on record`);
      return { id: row.id, publicKey: signer.publicKey, sign: (data) => signer.sign(data).toString('base64') };
    }
    const privateKey = createPrivateKey(this.box.openText(row.private_key, `signing-key:${row.id}`));
    const publicKey = createPublicKey(row.public_key);
    if (!createPublicKey(privateKey).equals(publicKey)) throw new Error(`Signing key ${row.id}: the public key on record is not its own`);
    return { id: row.id, publicKey, sign: (data) => sign(null, data, privateKey).toString('base64') };
  }

  private tokenSigner(label: string) {
    if (!this.token)
      throw new Pkcs11Error(`An online signing key is on a PKCS#11 token ("${label}") but no token is configured (keys.pkcs11)`);
    return this.token().signer(label);
  }

  /**
   * Verifies with any key ever used (retired keys still verify what they signed). The public key
   * is derived from the private half, which must open under the master key (or is read from the
   * token that holds it): a key row planted by someone who can write the database but does not
   * hold the master key (or the token) verifies nothing.
   */
  async verify(keyId: string, data: Buffer, signature: string): Promise<boolean> {
    let publicKey = this.verifiers.get(keyId);
    if (!publicKey) {
      const row = await this.store.privateKeyOf(keyId);
      if (!row) return false;
      try {
        publicKey = row.private_key.startsWith(TOKEN_KEY_PREFIX)
          ? this.tokenSigner(row.private_key.slice(TOKEN_KEY_PREFIX.length)).publicKey
          : createPublicKey(createPrivateKey(this.box.openText(row.private_key, `signing-key:${row.id}`)));
      } catch {
        return false;
      }
      this.verifiers.set(keyId, publicKey);
    }
    return verify(null, data, publicKey, Buffer.from(signature, 'base64'));
  }
}
