/**
 * The gateway columns of the devices table (migration 018): which devices are gateways, which
 * gateway each child is attached to, and the attach/move/detach changes the brokers poll.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { DeviceStatus } from './model.js';
import type { Executor } from '../storage/executor.js';

/** A child as the broker caches it: its ID, serial and status. */
export interface ChildRow {
  id: string;
  serial: string;
  product_id: string;
  status: DeviceStatus;
}

/** A child's gateway assignment as of `gateway_changed_at`. */
export interface GatewayChangeRow {
  id: string;
  gateway_id: string | null;
  status: DeviceStatus;
  gateway_changed_at: number;
}

export class GatewayStore {
  constructor(readonly db: Kysely<Database>) {}

  async setGatewayEnabled(deviceId: string, at: number | null, now: number, db: Executor = this.db): Promise<void> {
    await db.updateTable('devices').set({ gateway_enabled_at: at, updated_at: now }).where('id', '=', deviceId).execute();
  }

  /**
   * Takes the gateway's row for the rest of the transaction (an update that changes nothing: a row
   * lock on PostgreSQL, the write lock on SQLite), so two registrations cannot both pass the cap.
   */
  async lockGateway(gatewayId: string, db: Executor): Promise<void> {
    await db
      .updateTable('devices')
      .set((eb) => ({ gateway_enabled_at: eb.ref('gateway_enabled_at') }))
      .where('id', '=', gatewayId)
      .execute();
  }

  childrenOf(gatewayId: string, limit: number, db: Executor = this.db): Promise<ChildRow[]> {
    return db
      .selectFrom('devices')
      .select(['id', 'serial', 'product_id', 'status'])
      .where('gateway_id', '=', gatewayId)
      .orderBy('serial')
      .limit(limit)
      .execute();
  }

  async countChildren(gatewayId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('gateway_id', '=', gatewayId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Attaches the child to `gatewayId` (null: detaches it); a pending child becomes active (the gateway is its credential). */
  async assign(childId: string, gatewayId: string | null, now: number, activate: boolean, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('devices')
      .set({ gateway_id: gatewayId, gateway_changed_at: now, updated_at: now, ...(activate ? { status: 'active' as const } : {}) })
      .where('id', '=', childId)
      .execute();
  }

  /** Children attached, moved or detached at or after `since` (every organization: the brokers' poll). */
  async changesSince(since: number, db: Executor = this.db): Promise<GatewayChangeRow[]> {
    const rows = await db
      .selectFrom('devices')
      .select(['id', 'gateway_id', 'status', 'gateway_changed_at'])
      .where('gateway_changed_at', '>=', since)
      .execute();
    return rows.map((r) => ({ ...r, gateway_changed_at: Number(r.gateway_changed_at) }));
  }
}
