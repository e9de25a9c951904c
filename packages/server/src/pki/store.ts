/**
 * The PKI domain's tables through Kysely: issued certificates and the published CRL (kept in
 * `kv` so every node serves the same one). Pass a transaction to act inside it.
 */
import type { Kysely } from 'kysely';
import type { Database, IssuedCertificatesTable } from '../storage/schema.js';

const CRL_KEY = 'pki:device-crl';

export interface StoredCrl {
  pem: string;
  number: number;
  thisUpdate: number;
  nextUpdate: number;
}

export class PkiStore {
  constructor(readonly db: Kysely<Database>) {}

  async insertCertificate(row: IssuedCertificatesTable): Promise<void> {
    await this.db.insertInto('issued_certificates').values(row).execute();
  }

  /** Records many issued certificates at once (a factory's batch, a benchmark's fleet), in inserts of at most 1,000 rows. */
  async insertCertificates(rows: IssuedCertificatesTable[]): Promise<void> {
    for (let start = 0; start < rows.length; start += 1000)
      await this.db
        .insertInto('issued_certificates')
        .values(rows.slice(start, start + 1000))
        .execute();
  }

  async findCertificate(serial: string): Promise<IssuedCertificatesTable | undefined> {
    return this.db.selectFrom('issued_certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
  }

  /** Serials of the device's certificates that are not revoked (expired ones included: revoking them is harmless). */
  async activeSerialsOfDevice(organizationId: string, deviceId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('issued_certificates')
      .select('serial')
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .where('status', '=', 'active')
      .orderBy('serial')
      .execute();
    return rows.map((r) => r.serial);
  }

  /** PEMs of the device's certificates that are neither revoked nor expired at `now`. */
  async currentPemsOfDevice(organizationId: string, deviceId: string, now: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('issued_certificates')
      .select('pem')
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .where('status', '=', 'active')
      .where('not_before', '<=', now)
      .where('not_after', '>', now)
      .execute();
    return rows.map((r) => r.pem);
  }

  /** The device's certificates, newest first (at most `limit`): what the console's identity card shows. */
  certificatesOfDevice(organizationId: string, deviceId: string, limit: number): Promise<Omit<IssuedCertificatesTable, 'pem'>[]> {
    return this.db
      .selectFrom('issued_certificates')
      .select([
        'serial',
        'organization_id',
        'device_id',
        'subject',
        'not_before',
        'not_after',
        'fingerprint_sha256',
        'status',
        'revoked_at',
        'revocation_reason',
        'created_at',
      ])
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .orderBy('created_at', 'desc')
      .orderBy('serial')
      .limit(limit)
      .execute();
  }

  async markRevoked(serial: string, at: number, reason: string): Promise<boolean> {
    const result = await this.db
      .updateTable('issued_certificates')
      .set({ status: 'revoked', revoked_at: at, revocation_reason: reason })
      .where('serial', '=', serial)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Certificates revoked at or after `since`. */
  async revokedSince(since: number): Promise<{ serial: string; device_id: string; revoked_at: number | null }[]> {
    return this.db
      .selectFrom('issued_certificates')
      .select(['serial', 'device_id', 'revoked_at'])
      .where('revoked_at', '>=', since)
      .execute();
  }

  /** Revoked certificates not yet expired at `now`: the CRL's entries (expired ones may leave it, RFC 5280 3.3). */
  async listRevoked(now: number): Promise<Pick<IssuedCertificatesTable, 'serial' | 'revoked_at' | 'revocation_reason'>[]> {
    return this.db
      .selectFrom('issued_certificates')
      .select(['serial', 'revoked_at', 'revocation_reason'])
      .where('status', '=', 'revoked')
      .where('not_after', '>', now)
      .orderBy('serial')
      .execute();
  }

  /** Takes the CRL row's lock (PostgreSQL) so concurrent rebuilds queue behind each other. */
  async lockCrl(now: number): Promise<void> {
    await this.db.updateTable('kv').set({ updated_at: now }).where('key', '=', CRL_KEY).execute();
  }

  async readCrl(): Promise<StoredCrl | null> {
    const row = await this.db.selectFrom('kv').select('value').where('key', '=', CRL_KEY).executeTakeFirst();
    return row ? (JSON.parse(row.value) as StoredCrl) : null;
  }

  async writeCrl(crl: StoredCrl, now: number): Promise<void> {
    const value = JSON.stringify(crl);
    await this.db
      .insertInto('kv')
      .values({ key: CRL_KEY, value, updated_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: now }))
      .execute();
  }
}
