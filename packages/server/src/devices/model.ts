/**
 * The device registry's shapes as callers see them (views), the rules every device input must
 * satisfy (serial, tags, group, attributes), and the one function that checks them, shared by
 * registration, update and bulk import so a row is valid in a file exactly when it is valid alone.
 */
import type { DeviceView, ProductView } from '@bulwark/protocol';
import type { DevicesTable } from '../storage/schema.js';
import { commandsOfColumn } from './command-catalogue.js';
import type { DeviceRow, ProductRow } from './store.js';

/** Where a device stands in its life: only `active` devices connect, publish and enroll. */
export type DeviceStatus = DevicesTable['status'];

/** A device and a product as the API serves them: wire shapes the console reads too (@bulwark/protocol). */
export type { DeviceView, ProductView };

export function toProductView(row: ProductRow): ProductView {
  return {
    id: row.id,
    name: row.name,
    hardwareRevision: row.hardware_revision,
    firmwareLine: row.firmware_line,
    supportUntil: row.support_until === null ? null : new Date(Number(row.support_until)).toISOString(),
    telemetryRetentionDays: row.telemetry_retention_days,
    telemetryDailyReadings: row.telemetry_daily_readings,
    telemetryDailyBytes: row.telemetry_daily_bytes,
    commands: commandsOfColumn(row.commands),
    createdAt: new Date(row.created_at).toISOString(),
  };
}

export function toDeviceView(row: DeviceRow): DeviceView {
  return {
    id: row.id,
    serial: row.serial,
    productId: row.product_id,
    status: row.status,
    firmwareVersion: row.firmware_version,
    lastSeenAt: row.last_seen_at === null ? null : new Date(row.last_seen_at).toISOString(),
    attributes: JSON.parse(row.attributes) as Record<string, unknown>,
    tags: JSON.parse(row.tags) as string[],
    group: row.group_name,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** The row of a device that registered itself (enrollment group, manufacturer certificate, a gateway's child): no attributes, tags, group or gateway yet. */
export function selfRegisteredDevice(
  fields: Pick<DeviceRow, 'id' | 'organization_id' | 'serial' | 'product_id' | 'status'>,
  now: number,
): DeviceRow {
  return {
    ...fields,
    firmware_version: null,
    last_seen_at: null,
    attributes: '{}',
    tags: '[]',
    group_name: null,
    gateway_enabled_at: null,
    gateway_id: null,
    gateway_changed_at: null,
    created_at: now,
    updated_at: now,
  };
}

/** Printable ASCII without spaces: serials compare byte-wise, so a prefix is one index range. */
export const SERIAL = /^[\x21-\x7e]{1,128}$/;
/** The character just above every serial character: `prefix` ≤ serial < `prefix + SERIAL_END` is "starts with". */
export const SERIAL_END = '\x7f';
export const TAG = /^[A-Za-z0-9][A-Za-z0-9._:=/-]{0,63}$/;
export const GROUP = /^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,99}$/;
export const MAX_TAGS = 32;
export const MAX_ATTRIBUTES_BYTES = 8192;

export interface DeviceInput {
  serial: string;
  productId: string;
  attributes: Record<string, unknown>;
  tags: string[];
  group: string | null;
}

export interface FieldProblem {
  field: string;
  problem: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkSerial(value: unknown, problems: FieldProblem[]): value is string {
  if (typeof value === 'string' && SERIAL.test(value)) return true;
  problems.push({ field: 'serial', problem: 'must be 1-128 printable ASCII characters without spaces' });
  return false;
}

export function checkTags(value: unknown, problems: FieldProblem[]): string[] | undefined {
  if (!Array.isArray(value) || value.length > MAX_TAGS || !value.every((t) => typeof t === 'string' && TAG.test(t))) {
    problems.push({
      field: 'tags',
      problem: `must be a list of at most ${MAX_TAGS} tags of 1-64 letters, digits and . _ : = / - (starting with a letter or digit)`,
    });
    return undefined;
  }
  return [...new Set(value as string[])].sort();
}

export function checkGroup(value: unknown, problems: FieldProblem[]): string | null | undefined {
  if (value === null) return null;
  if (typeof value === 'string' && GROUP.test(value)) return value;
  problems.push({
    field: 'group',
    problem: 'must be null or 1-100 letters, digits, spaces and . _ : / - (starting with a letter or digit)',
  });
  return undefined;
}

export function checkAttributes(value: unknown, problems: FieldProblem[]): Record<string, unknown> | undefined {
  if (isObject(value) && Buffer.byteLength(JSON.stringify(value)) <= MAX_ATTRIBUTES_BYTES) return value;
  problems.push({ field: 'attributes', problem: `must be a JSON object of at most ${MAX_ATTRIBUTES_BYTES} bytes` });
  return undefined;
}

const DEVICE_FIELDS = new Set(['serial', 'productId', 'product', 'attributes', 'tags', 'group']);

/**
 * Checks one device as given by a caller or an import row: `productId`, or `product` by name
 * (resolved through `productIdByName`). Returns the normalized input, or every problem found.
 */
export function checkDeviceInput(
  value: unknown,
  productIdByName: (name: string) => string | undefined,
  productIds: ReadonlySet<string>,
): { input: DeviceInput } | { problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  if (!isObject(value)) return { problems: [{ field: 'row', problem: 'must be an object with serial and productId (or product)' }] };
  for (const key of Object.keys(value)) if (!DEVICE_FIELDS.has(key)) problems.push({ field: key, problem: 'is not a device field' });
  const serialOk = checkSerial(value.serial, problems);
  let productId: string | undefined;
  if (typeof value.productId === 'string' && value.productId !== '')
    productId = productIds.has(value.productId) ? value.productId : undefined;
  else if (typeof value.product === 'string' && value.product !== '') productId = productIdByName(value.product);
  if (!productId)
    problems.push({
      field: value.product !== undefined && value.productId === undefined ? 'product' : 'productId',
      problem: 'must name a product of this organization',
    });
  const attributes = value.attributes === undefined ? {} : checkAttributes(value.attributes, problems);
  const tags = value.tags === undefined ? [] : checkTags(value.tags, problems);
  const group = value.group === undefined ? null : checkGroup(value.group, problems);
  if (problems.length > 0 || !serialOk) return { problems };
  return { input: { serial: value.serial as string, productId: productId!, attributes: attributes!, tags: tags!, group: group! } };
}
