/**
 * What the audit checks read: read-only queries over other domains' tables (certificates,
 * presence, operators, API keys, symmetric keys, TUF metadata, bootstrap CAs, products). A known exception
 * to "a domain reads only its own tables" (docs/architecture.md): each query here is a
 * candidate for a read method of its owning domain's service. Every list is bounded by `limit`
 * and comes with the full count.
 */
import type { Kysely } from 'kysely';
import type { Database, DeviceConnectionConflictsTable } from '../storage/schema.js';

export interface Bounded<T> {
  items: T[];
  total: number;
}

export class EvidenceStore {
  constructor(private readonly db: Kysely<Database>) {}

  async organizations(): Promise<{ id: string; slug: string }[]> {
    return this.db.selectFrom('organizations').select(['id', 'slug']).orderBy('slug').execute();
  }

  async organizationBySlug(slug: string): Promise<{ id: string; slug: string } | undefined> {
    return this.db.selectFrom('organizations').select(['id', 'slug']).where('slug', '=', slug).executeTakeFirst();
  }

  /** Active device certificates that end before `before` (expired ones included), soonest first. */
  async expiringDeviceCertificates(
    organizationId: string,
    before: number,
    limit: number,
  ): Promise<Bounded<{ serial: string; deviceId: string; notAfter: number }>> {
    const base = this.db
      .selectFrom('issued_certificates')
      .where('organization_id', '=', organizationId)
      .where('status', '=', 'active')
      .where('not_after', '<', before);
    const rows = await base.select(['serial', 'device_id', 'not_after']).orderBy('not_after').orderBy('serial').limit(limit).execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: rows.map((r) => ({ serial: r.serial, deviceId: r.device_id, notAfter: Number(r.not_after) })), total: Number(total.n) };
  }

  /** Connected devices whose newest certificate is revoked: a session the revocation should have ended. */
  async connectedWithRevokedCertificate(
    organizationId: string,
    limit: number,
  ): Promise<
    Bounded<{ deviceId: string; serial: string; revokedAt: number | null; connectedSince: number; remoteAddress: string | null }>
  > {
    // Driven from the connected devices: each one's newest certificate (a correlated lookup on the
    // (organization_id, device_id) index), kept when revoked. Joining every revoked certificate
    // first let SQLite walk 90 % of the table with a subquery per row (30 s at 100,000 devices).
    const base = this.db
      .selectFrom('device_presence as p')
      .innerJoin('issued_certificates as c', (join) =>
        join.on((eb) =>
          eb(
            'c.serial',
            '=',
            eb
              .selectFrom('issued_certificates as n')
              .select('n.serial')
              .where('n.organization_id', '=', organizationId)
              .whereRef('n.device_id', '=', 'p.device_id')
              .orderBy('n.created_at', 'desc')
              .limit(1),
          ),
        ),
      )
      .where('p.organization_id', '=', organizationId)
      .where('p.connected_since', 'is not', null)
      .where('c.status', '=', 'revoked');
    const rows = await base
      .select(['p.device_id', 'c.serial', 'c.revoked_at', 'p.connected_since', 'p.remote_address'])
      .orderBy('p.device_id')
      .limit(limit)
      .execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return {
      items: rows.map((r) => ({
        deviceId: r.device_id,
        serial: r.serial,
        revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
        connectedSince: Number(r.connected_since),
        remoteAddress: r.remote_address,
      })),
      total: Number(total.n),
    };
  }

  /** Active operators who have not enrolled a second factor (TOTP or a passkey). */
  async operatorsWithoutMfa(organizationId: string, limit: number): Promise<{ id: string; email: string; role: string | null }[]> {
    return this.db
      .selectFrom('users')
      .select(['id', 'email', 'role'])
      .where('organization_id', '=', organizationId)
      .where('kind', '=', 'operator')
      .where('status', '=', 'active')
      .where('mfa_enabled_at', 'is', null)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('passkey_credentials').select('passkey_credentials.id').whereRef('passkey_credentials.user_id', '=', 'users.id'),
          ),
        ),
      )
      .orderBy('email')
      .limit(limit)
      .execute();
  }

  /** API keys that still work (not revoked, not expired). */
  async liveApiKeys(
    organizationId: string,
    now: number,
    limit: number,
  ): Promise<{ id: string; name: string; userId: string; scopes: string[]; expiresAt: number }[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'user_id', 'scopes', 'expires_at'])
      .where('organization_id', '=', organizationId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      userId: r.user_id,
      scopes: JSON.parse(r.scopes) as string[],
      expiresAt: Number(r.expires_at),
    }));
  }

  /** Current symmetric device keys (not rotated out) created before `before`. */
  async staleSymmetricKeys(
    organizationId: string,
    before: number,
    limit: number,
  ): Promise<Bounded<{ id: string; deviceId: string; createdAt: number }>> {
    const base = this.db
      .selectFrom('device_symmetric_keys')
      .where('organization_id', '=', organizationId)
      .where('valid_until', 'is', null)
      .where('created_at', '<', before);
    const rows = await base.select(['id', 'device_id', 'created_at']).orderBy('created_at').orderBy('id').limit(limit).execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: rows.map((r) => ({ id: r.id, deviceId: r.device_id, createdAt: Number(r.created_at) })), total: Number(total.n) };
  }

  /** The newest version of each TUF role of the organization (image repository, products, director root) expiring before `before`. */
  async expiringTufMetadata(organizationId: string, before: number): Promise<{ role: string; version: number; expiresAt: number }[]> {
    const rows = await this.db
      .selectFrom('tuf_metadata as t')
      .select(['t.role', 't.version', 't.expires_at'])
      .where('t.organization_id', '=', organizationId)
      .where('t.expires_at', '<', before)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('tuf_metadata as n')
              .select('n.version')
              .whereRef('n.organization_id', '=', 't.organization_id')
              .whereRef('n.role', '=', 't.role')
              .whereRef('n.version', '>', 't.version'),
          ),
        ),
      )
      .orderBy('t.role')
      .execute();
    return rows.map((r) => ({ role: r.role, version: r.version, expiresAt: Number(r.expires_at) }));
  }

  /** The organization's bootstrap CAs in use that end before `before`. */
  async expiringBootstrapCas(organizationId: string, before: number): Promise<{ id: string; name: string; notAfter: number }[]> {
    const rows = await this.db
      .selectFrom('bootstrap_cas')
      .select(['id', 'name', 'not_after'])
      .where('organization_id', '=', organizationId)
      .where('deleted_at', 'is', null)
      .where('not_after', '<', before)
      .orderBy('not_after')
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.name, notAfter: Number(r.not_after) }));
  }

  /** Products that declare no end of support (ETSI EN 303 645 5.3-13). */
  async productsWithoutSupportPeriod(organizationId: string, limit: number): Promise<Bounded<{ id: string; name: string }>> {
    const base = this.db.selectFrom('products').where('organization_id', '=', organizationId).where('support_until', 'is', null);
    const items = await base.select(['id', 'name']).orderBy('name').orderBy('id').limit(limit).execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items, total: Number(total.n) };
  }

  /** Open vulnerability reports past a deadline at `now` (ETSI EN 303 645 5.2-1): not triaged by acknowledge_by, or not resolved by resolve_by. */
  async overdueDisclosures(
    organizationId: string,
    now: number,
    limit: number,
  ): Promise<Bounded<{ id: string; title: string; state: string; acknowledgeBy: number; resolveBy: number }>> {
    const base = this.db
      .selectFrom('disclosure_reports')
      .where('organization_id', '=', organizationId)
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'received'), eb('acknowledge_by', '<', now)]),
          eb.and([eb('state', 'in', ['received', 'triaged']), eb('resolve_by', '<', now)]),
        ]),
      );
    const rows = await base
      .select(['id', 'title', 'state', 'acknowledge_by', 'resolve_by'])
      .orderBy('received_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return {
      items: rows.map((r) => ({
        id: r.id,
        title: r.title,
        state: r.state,
        acknowledgeBy: Number(r.acknowledge_by),
        resolveBy: Number(r.resolve_by),
      })),
      total: Number(total.n),
    };
  }

  /** Where the organization's finding notifications go by mail: its active owners. */
  async ownerEmails(organizationId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('users')
      .select('email')
      .where('organization_id', '=', organizationId)
      .where('kind', '=', 'operator')
      .where('role', '=', 'owner')
      .where('status', '=', 'active')
      .orderBy('email')
      .limit(100)
      .execute();
    return rows.map((r) => r.email);
  }

  /** The CA certificates recorded as revoked that an organization's checks consider: its own and the deployment's. */
  async revokedCas(
    organizationId: string,
  ): Promise<{ fingerprint: string; subject: string; pem: string; reason: string; revokedAt: number }[]> {
    const rows = await this.db
      .selectFrom('ca_revocations')
      .select(['fingerprint_sha256', 'subject', 'pem', 'reason', 'revoked_at'])
      .where((eb) => eb.or([eb('organization_id', '=', organizationId), eb('organization_id', 'is', null)]))
      .orderBy('revoked_at')
      .execute();
    return rows.map((r) => ({
      fingerprint: r.fingerprint_sha256,
      subject: r.subject,
      pem: r.pem,
      reason: r.reason,
      revokedAt: Number(r.revoked_at),
    }));
  }

  /** The organization's registered (not deleted) bootstrap CAs with their certificates. */
  async liveBootstrapCas(organizationId: string): Promise<{ id: string; name: string; pem: string; fingerprint: string }[]> {
    const rows = await this.db
      .selectFrom('bootstrap_cas')
      .select(['id', 'name', 'pem', 'fingerprint_sha256'])
      .where('organization_id', '=', organizationId)
      .where('deleted_at', 'is', null)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.name, pem: r.pem, fingerprint: r.fingerprint_sha256 }));
  }

  /**
   * Every active device certificate of the organization that has not ended, with its PEM, a page of
   * `page` at a time by serial (the key-quality and revoked-CA checks parse each one).
   */
  async *activeDeviceCertificates(
    organizationId: string,
    now: number,
    page = 1000,
  ): AsyncGenerator<{ serial: string; deviceId: string; pem: string }> {
    let after = '';
    for (;;) {
      const rows = await this.db
        .selectFrom('issued_certificates')
        .select(['serial', 'device_id', 'pem'])
        .where('organization_id', '=', organizationId)
        .where('status', '=', 'active')
        .where('not_after', '>', now)
        .where('serial', '>', after)
        .orderBy('serial')
        .limit(page)
        .execute();
      for (const r of rows) yield { serial: r.serial, deviceId: r.device_id, pem: r.pem };
      if (rows.length < page) return;
      after = rows[rows.length - 1]!.serial;
    }
  }

  /** Active, unexpired device certificates whose validity began before `before` (older than policy), oldest first. */
  async oldDeviceCertificates(
    organizationId: string,
    before: number,
    now: number,
    limit: number,
  ): Promise<Bounded<{ serial: string; deviceId: string; notBefore: number }>> {
    const base = this.db
      .selectFrom('issued_certificates')
      .where('organization_id', '=', organizationId)
      .where('status', '=', 'active')
      .where('not_after', '>', now)
      .where('not_before', '<', before);
    const rows = await base.select(['serial', 'device_id', 'not_before']).orderBy('not_before').orderBy('serial').limit(limit).execute();
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return {
      items: rows.map((r) => ({ serial: r.serial, deviceId: r.device_id, notBefore: Number(r.not_before) })),
      total: Number(total.n),
    };
  }

  /** Session takeovers in the organization since `since` (newest first, at most `limit`): the anomaly recorder's evidence. */
  connectionConflicts(organizationId: string, since: number, limit: number): Promise<DeviceConnectionConflictsTable[]> {
    return this.db
      .selectFrom('device_connection_conflicts')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('at', '>=', since)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute();
  }
}
