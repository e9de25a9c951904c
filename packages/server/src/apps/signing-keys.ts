/**
 * The Ed25519 keys each organization's access tokens are signed with. The private half is sealed
 * under the master key (master-key rotation re-wraps it: keys/sealed-column-store.ts); the public half
 * is published in the JWKS. Rotation makes a new active key and leaves the old one verifying for
 * the overlap (longer than an access token lives), after which it is retired and verifies
 * nothing; both happen on schedule (`tick`) and on demand (API route, CLI), audited.
 *
 * Verification keys are derived from the sealed private halves, never read from the public column.
 * Each node caches the keys that still verify, and each organization's signing key, for
 * KEY_CACHE_MS: a key rotated or retired on another node is taken into account here within that
 * time, on this node at once. The overlap (hours) is far longer than that.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK } from 'jose';
import { ErrorCodes } from '@bulwark/protocol';
import type { AuditEvent, AuditService } from '../audit/service.js';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import { DAY, HOUR, type Clock } from '../clock.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { KeyCustody } from '../keys/custody.js';
import { newId } from '../tokens.js';
import { keyStatus, toKeyView, type SigningKeyView } from './model.js';
import type { AppStore, SigningKeyRow } from './store.js';
import type { Executor } from '../storage/executor.js';

export const TOKEN_ALGORITHM = 'EdDSA';
const KEY_CACHE_MS = 30_000;
/** An unknown kid reloads the key set at most this often: garbage kids cannot hammer the database. */
const MISS_RELOAD_MS = 1_000;

export interface SigningKeyConfig {
  keyLifetimeDays: number;
  keyOverlapHours: number;
}

/** A published public key: Ed25519 as an OKP JWK. */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  kid: string;
  alg: string;
  use: string;
}

export interface Signer {
  kid: string;
  privateKey: KeyObject;
}

export interface VerificationKey {
  kid: string;
  organizationId: string;
  publicKey: KeyObject;
}

/** Who changed a key: an operator or the CLI (an Actor), or the schedule (null). */
type By = Actor | null;

export class AppSigningKeys {
  private readonly signers = new Map<string, { signer: Promise<Signer>; at: number }>();
  private verifiers = new Map<string, VerificationKey>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly store: AppStore,
    private readonly box: Pick<KeyCustody, 'seal' | 'openText'>,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: SigningKeyConfig,
  ) {}

  /** The organization's active signing key, made on first use (once, however many sign-ins ask at the same time). */
  signer(organizationId: string): Promise<Signer> {
    // Re-read now and then: another node may have rotated the key (this one forgets at once when it rotates).
    const cached = this.signers.get(organizationId);
    if (cached && this.clock.now() - cached.at < KEY_CACHE_MS) return cached.signer;
    const loading = (async () => {
      const rows = await this.store.keysOf(organizationId);
      const active = rows.find((r) => keyStatus(r) === 'active') ?? (await this.create(organizationId, null, 'app.signing_key_created'));
      return { kid: active.id, privateKey: createPrivateKey(this.box.openText(active.private_key, sealContext(active.id))) };
    })();
    this.signers.set(organizationId, { signer: loading, at: this.clock.now() });
    loading.catch(() => this.signers.delete(organizationId));
    return loading;
  }

  /** The key a token names, if it still verifies; 'retired' for a key that no longer does. */
  async verificationKey(kid: string): Promise<VerificationKey | 'retired' | null> {
    const now = this.clock.now();
    if (now - this.loadedAt >= KEY_CACHE_MS) await this.reload();
    let key = this.verifiers.get(kid);
    if (!key && now - this.loadedAt >= MISS_RELOAD_MS) {
      await this.reload();
      key = this.verifiers.get(kid);
    }
    if (key) return key;
    const row = await this.store.key(kid);
    return row && row.retired_at !== null ? 'retired' : null;
  }

  /** The JSON Web Key Set of every key that still verifies. */
  async jwks(): Promise<{ keys: PublicJwk[] }> {
    const rows = await this.store.unretiredKeys();
    return { keys: rows.map((r) => JSON.parse(r.public_jwk) as PublicJwk) };
  }

  async list(actor: Actor): Promise<SigningKeyView[]> {
    requirePermission(actor, 'org:manage');
    return (await this.store.keysOf(actor.organizationId)).map(toKeyView);
  }

  /** A new active key; the previous one keeps verifying until retired (after the overlap). */
  async rotate(actor: By, organizationId: string): Promise<SigningKeyView> {
    if (actor) requirePermission(actor, 'org:manage');
    const row = await this.store.db.transaction().execute(async (trx) => {
      const previous = await this.store.markRotated(organizationId, this.clock.now(), trx);
      return this.create(organizationId, actor, 'app.signing_key_rotated', trx, { previous });
    });
    this.forget(organizationId);
    return toKeyView(row);
  }

  /**
   * Retires a key at once: tokens it signed are refused from now on. Retiring the active key
   * (a suspected compromise) rotates first, so the organization keeps a key to sign with.
   */
  async retire(actor: By, organizationId: string, kid: string): Promise<SigningKeyView> {
    if (actor) requirePermission(actor, 'org:manage');
    const row = await this.store.key(kid);
    if (!row || row.organization_id !== organizationId) throw new NotFoundError('Signing key');
    if (row.retired_at !== null) throw new ConflictError('This key is already retired', { kid }, ErrorCodes.appKeyActive);
    if (keyStatus(row) === 'active') await this.rotate(actor, organizationId);
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.retireKey(kid, this.clock.now(), trx);
      await this.audit.record(this.event(actor, organizationId, 'app.signing_key_retired', kid, { scheduled: actor === null }), trx);
    });
    this.forget(organizationId);
    return toKeyView((await this.store.key(kid))!);
  }

  /** The schedule: rotates active keys past their lifetime and retires rotated keys past the overlap. */
  async tick(): Promise<{ rotated: number; retired: number }> {
    const now = this.clock.now();
    let rotated = 0;
    let retired = 0;
    for (const row of await this.store.unretiredKeys()) {
      const status = keyStatus(row);
      if (status === 'active' && now - row.created_at >= this.config.keyLifetimeDays * DAY) {
        await this.rotate(null, row.organization_id);
        rotated++;
      } else if (status === 'verifying' && now - row.rotated_at! >= this.config.keyOverlapHours * HOUR) {
        await this.retire(null, row.organization_id, row.id);
        retired++;
      }
    }
    return { rotated, retired };
  }

  private async create(
    organizationId: string,
    actor: By,
    action: string,
    db: Executor = this.store.db,
    details: Record<string, unknown> = {},
  ): Promise<SigningKeyRow> {
    const kid = newId();
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: TOKEN_ALGORITHM, use: 'sig' };
    const row: SigningKeyRow = {
      id: kid,
      organization_id: organizationId,
      algorithm: TOKEN_ALGORITHM,
      public_jwk: JSON.stringify(jwk),
      private_key: this.box.seal(privateKey.export({ type: 'pkcs8', format: 'pem' }), sealContext(kid)),
      created_at: this.clock.now(),
      rotated_at: null,
      retired_at: null,
    };
    await this.store.insertKey(row, db);
    await this.audit.record(this.event(actor, organizationId, action, kid, details), db);
    return row;
  }

  private event(actor: By, organizationId: string, action: string, kid: string, details: Record<string, unknown>): AuditEvent {
    return {
      organizationId,
      actor: actor ? auditActor(actor) : { type: 'system', id: null },
      action,
      target: { type: 'app_signing_key', id: kid },
      sourceIp: actor?.sourceIp ?? null,
      details,
    };
  }

  private forget(organizationId: string): void {
    this.signers.delete(organizationId);
    this.loadedAt = -Infinity;
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const rows = await this.store.unretiredKeys();
        const verifiers = new Map<string, VerificationKey>();
        for (const row of rows) {
          // The public key comes from the sealed private half: a row planted by someone who can write
          // the database but does not hold the master key verifies nothing.
          let publicKey: KeyObject;
          try {
            publicKey = createPublicKey(createPrivateKey(this.box.openText(row.private_key, sealContext(row.id))));
          } catch {
            continue;
          }
          verifiers.set(row.id, { kid: row.id, organizationId: row.organization_id, publicKey });
        }
        this.verifiers = verifiers;
        this.loadedAt = this.clock.now();
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }
}

const sealContext = (kid: string): string => `app-signing-key:${kid}`;
