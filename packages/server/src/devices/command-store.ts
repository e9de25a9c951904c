/**
 * The `device_commands` table: one row per command sent to a device, with its outcome. The service
 * (devices/commands.ts) holds the rules, the deadline and the audit entry.
 */
import type { Kysely } from 'kysely';
import type { Database, DeviceCommandsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export class CommandStore {
  constructor(readonly db: Kysely<Database>) {}

  async insert(row: DeviceCommandsTable, db: Executor): Promise<void> {
    await db.insertInto('device_commands').values(row).execute();
  }

  /** The organization's command to the device, if any. */
  command(organizationId: string, deviceId: string, commandId: string): Promise<DeviceCommandsTable | undefined> {
    return this.db
      .selectFrom('device_commands')
      .selectAll()
      .where('id', '=', commandId)
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
  }

  /** The device's latest commands, newest first. */
  latest(organizationId: string, deviceId: string, limit: number): Promise<DeviceCommandsTable[]> {
    return this.db
      .selectFrom('device_commands')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
  }

  /** Records the device's answer if the command is still pending and before its deadline at `at`; false otherwise. */
  async complete(
    deviceId: string,
    commandId: string,
    outcome: Pick<DeviceCommandsTable, 'status' | 'result' | 'error'>,
    at: number,
  ): Promise<boolean> {
    const updated = await this.db
      .updateTable('device_commands')
      .set({ ...outcome, completed_at: at })
      .where('id', '=', commandId)
      .where('device_id', '=', deviceId)
      .where('status', '=', 'pending')
      .where('expires_at', '>', at)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }
}
