/**
 * Allow-lists on self-registration, per product (devices registering through the product's
 * manufacturer CAs) or per enrollment group (devices registering with a derived symmetric key):
 * serial patterns (`*` and `?` globs), an imported serial list, source address ranges (CIDR) and a
 * daily quota. A serial passes when no pattern and no list is set, or when a pattern or the list
 * admits it. Without a policy, or with no quota set, DEFAULT_DAILY_QUOTA applies, so a flood of
 * unknown devices can never fill the registry. The quota is counted inside the registration's
 * transaction (ManufacturerStore.countRegistration), so a refused or failed registration leaves no row.
 */
import { BlockList, isIP } from 'node:net';
import { ErrorCodes } from '@bulwark/protocol';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { EnrollmentScope } from '../storage/schema.js';
import { RegistrationRefusedError } from './errors.js';
import type { EnrollmentPolicyRow, ManufacturerStore } from './manufacturer-store.js';
import { SERIAL } from './model.js';
import type { DevicesStore } from './store.js';
import type { Executor } from '../storage/executor.js';

/** Registrations a scope accepts per UTC day when its policy sets no quota. */
export const DEFAULT_DAILY_QUOTA = 1000;
export const MAX_DAILY_QUOTA = 1_000_000;
export const MAX_PATTERNS = 50;
export const MAX_CIDRS = 50;
/** Serials one import may carry (a file of a production run). */
export const MAX_SERIAL_IMPORT = 100_000;
const DAY_MS = 86_400_000;

export const utcDay = (now: number) => Math.floor(now / DAY_MS);

export interface EnrollmentPolicyInput {
  serialPatterns?: string[];
  sourceCidrs?: string[];
  dailyQuota?: number | null;
  /** Whether the imported serial list is part of the allow-list. */
  serialList?: boolean;
}

export interface EnrollmentPolicyView {
  scope: EnrollmentScope;
  scopeId: string;
  serialPatterns: string[];
  sourceCidrs: string[];
  dailyQuota: number;
  dailyQuotaSet: boolean;
  serialList: boolean;
  serialsListed: number;
  registrationsToday: number;
}

/** A compiled policy: what the device path checks, without parsing anything per device. */
interface Compiled {
  patterns: RegExp[];
  ranges: BlockList | null;
  quota: number;
  serialList: boolean;
}

const PATTERN = /^[\x21-\x7e]{1,128}$/;

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Parses "10.0.0.0/8" or "2001:db8::/32"; a bare address is its /32 or /128. */
function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address, prefixText, extra] = text.trim().split('/');
  if (extra !== undefined || !address) return null;
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

function compile(row: EnrollmentPolicyRow | undefined): Compiled {
  if (!row) return { patterns: [], ranges: null, quota: DEFAULT_DAILY_QUOTA, serialList: false };
  const cidrs = JSON.parse(row.source_cidrs) as string[];
  let ranges: BlockList | null = null;
  if (cidrs.length > 0) {
    ranges = new BlockList();
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr)!;
      ranges.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }
  return {
    patterns: (JSON.parse(row.serial_patterns) as string[]).map(globToRegExp),
    ranges,
    quota: row.daily_quota ?? DEFAULT_DAILY_QUOTA,
    serialList: row.serial_list === 1,
  };
}

/** An IPv4 address a dual-stack socket reports as ::ffff:a.b.c.d, as the IPv4 address it is. */
function plainAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped ? mapped[1]! : address;
  const version = isIP(plain);
  return version === 0 ? null : { address: plain, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export class EnrollmentPolicyService {
  /** Compiled policies, by scope; dropped when a policy changes on this node and after CACHE_MS anywhere. */
  private readonly cache = new Map<string, { at: number; compiled: Compiled }>();
  private static readonly CACHE_MS = 5_000;

  constructor(
    private readonly store: ManufacturerStore,
    private readonly devices: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async get(actor: Actor, scope: EnrollmentScope, scopeId: string): Promise<EnrollmentPolicyView> {
    requirePermission(actor, 'devices:read');
    await this.requireScope(actor.organizationId, scope, scopeId);
    return this.view(scope, scopeId);
  }

  /** Replaces the allow-list's settings (fields left out keep their value). */
  async set(actor: Actor, scope: EnrollmentScope, scopeId: string, input: EnrollmentPolicyInput): Promise<EnrollmentPolicyView> {
    requirePermission(actor, 'devices:write');
    await this.requireScope(actor.organizationId, scope, scopeId);
    const patterns = input.serialPatterns?.map((p) => p.trim());
    if (patterns && (patterns.length > MAX_PATTERNS || patterns.some((p) => !PATTERN.test(p))))
      throw new ValidationError(
        `serialPatterns holds at most ${MAX_PATTERNS} patterns of 1-128 printable characters without spaces (* any run, ? one character)`,
        { field: 'serialPatterns' },
        ErrorCodes.enrollmentPolicyInvalid,
      );
    const cidrs = input.sourceCidrs?.map((c) => c.trim());
    const badCidr = cidrs?.find((c) => parseCidr(c) === null);
    if (cidrs && (cidrs.length > MAX_CIDRS || badCidr !== undefined))
      throw new ValidationError(
        badCidr !== undefined
          ? `sourceCidrs: "${badCidr.slice(0, 60)}" is not an address range such as 203.0.113.0/24 or 2001:db8::/32`
          : `sourceCidrs holds at most ${MAX_CIDRS} ranges`,
        { field: 'sourceCidrs' },
        ErrorCodes.enrollmentPolicyInvalid,
      );
    const quota = input.dailyQuota;
    if (quota !== undefined && quota !== null && (!Number.isInteger(quota) || quota < 0 || quota > MAX_DAILY_QUOTA))
      throw new ValidationError(
        `dailyQuota is a whole number from 0 to ${MAX_DAILY_QUOTA}, or null for the default (${DEFAULT_DAILY_QUOTA})`,
        { field: 'dailyQuota' },
        ErrorCodes.enrollmentPolicyInvalid,
      );
    await this.store.db.transaction().execute(async (trx) => {
      const row = this.merged(actor, scope, scopeId, await this.store.policy(scope, scopeId, trx), {
        ...(patterns ? { serial_patterns: JSON.stringify(patterns) } : {}),
        ...(cidrs ? { source_cidrs: JSON.stringify(cidrs) } : {}),
        ...(quota !== undefined ? { daily_quota: quota } : {}),
        ...(input.serialList !== undefined ? { serial_list: input.serialList ? 1 : 0 } : {}),
      });
      await this.store.savePolicy(row, trx);
      await this.audit.recordBy(
        actor,
        'enrollment_policy.updated',
        { type: scope, id: scopeId },
        {
          serialPatterns: JSON.parse(row.serial_patterns) as string[],
          sourceCidrs: JSON.parse(row.source_cidrs) as string[],
          dailyQuota: row.daily_quota,
          serialList: row.serial_list === 1,
        },
        trx,
      );
    });
    this.cache.delete(`${scope}\n${scopeId}`);
    return this.view(scope, scopeId);
  }

  /**
   * Imports serials into the scope's list (a file of a production run, one serial a line) and makes
   * the list part of the allow-list. `replace` drops the serials listed before.
   */
  async importSerials(
    actor: Actor,
    scope: EnrollmentScope,
    scopeId: string,
    serials: string[],
    replace = false,
  ): Promise<EnrollmentPolicyView> {
    requirePermission(actor, 'devices:write');
    await this.requireScope(actor.organizationId, scope, scopeId);
    if (serials.length > MAX_SERIAL_IMPORT)
      throw new ValidationError(`An import holds at most ${MAX_SERIAL_IMPORT} serials; split the file`, { count: serials.length });
    const bad = serials.findIndex((s) => !SERIAL.test(s));
    if (bad >= 0)
      throw new ValidationError(
        `Serial ${bad + 1} is not 1-128 printable ASCII characters without spaces`,
        { index: bad },
        ErrorCodes.enrollmentPolicyInvalid,
      );
    const unique = [...new Set(serials)];
    await this.store.db.transaction().execute(async (trx) => {
      const listed = await this.store.importSerials(scope, scopeId, unique, replace, trx);
      await this.store.savePolicy(
        this.merged(actor, scope, scopeId, await this.store.policy(scope, scopeId, trx), { serial_list: 1 }),
        trx,
      );
      await this.audit.recordBy(
        actor,
        'enrollment_policy.serials_imported',
        { type: scope, id: scopeId },
        { imported: unique.length, replace, listed },
        trx,
      );
    });
    this.cache.delete(`${scope}\n${scopeId}`);
    return this.view(scope, scopeId);
  }

  /** The scope's policy row with `changes` over its current values (or the defaults). */
  private merged(
    actor: Actor,
    scope: EnrollmentScope,
    scopeId: string,
    current: EnrollmentPolicyRow | undefined,
    changes: Partial<Pick<EnrollmentPolicyRow, 'serial_patterns' | 'source_cidrs' | 'daily_quota' | 'serial_list'>>,
  ): EnrollmentPolicyRow {
    return {
      scope,
      scope_id: scopeId,
      organization_id: actor.organizationId,
      serial_patterns: current?.serial_patterns ?? '[]',
      source_cidrs: current?.source_cidrs ?? '[]',
      daily_quota: current?.daily_quota ?? null,
      serial_list: current?.serial_list ?? 0,
      ...changes,
      updated_at: this.clock.now(),
    };
  }

  /**
   * Checks a would-be registration against the scope's allow-list (address, then serial) and answers
   * the quota to count it against; throws RegistrationRefusedError with the reason.
   */
  async admit(scope: EnrollmentScope, scopeId: string, serial: string, sourceIp: string): Promise<number> {
    const policy = await this.compiled(scope, scopeId);
    if (policy.ranges) {
      const address = plainAddress(sourceIp);
      if (!address || !policy.ranges.check(address.address, address.family))
        throw new RegistrationRefusedError(ErrorCodes.jitAddressNotAllowed, 'Registrations are not accepted from this address');
    }
    if (policy.patterns.length > 0 || policy.serialList) {
      const allowed =
        policy.patterns.some((p) => p.test(serial)) || (policy.serialList && (await this.store.serialAllowed(scope, scopeId, serial)));
      if (!allowed) throw new RegistrationRefusedError(ErrorCodes.jitSerialNotAllowed, 'This serial is not on the allow-list');
    }
    return policy.quota;
  }

  /** Counts one new device against the scope's quota for today, inside the caller's transaction; false when the quota is reached. */
  countRegistration(scope: EnrollmentScope, scopeId: string, quota: number, trx: Executor): Promise<boolean> {
    return this.store.countRegistration(scope, scopeId, utcDay(this.clock.now()), quota, trx);
  }

  private async compiled(scope: EnrollmentScope, scopeId: string): Promise<Compiled> {
    const key = `${scope}\n${scopeId}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < EnrollmentPolicyService.CACHE_MS) return hit.compiled;
    const compiled = compile(await this.store.policy(scope, scopeId));
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: now, compiled });
    return compiled;
  }

  private async view(scope: EnrollmentScope, scopeId: string): Promise<EnrollmentPolicyView> {
    const row = await this.store.policy(scope, scopeId);
    return {
      scope,
      scopeId,
      serialPatterns: row ? (JSON.parse(row.serial_patterns) as string[]) : [],
      sourceCidrs: row ? (JSON.parse(row.source_cidrs) as string[]) : [],
      dailyQuota: row?.daily_quota ?? DEFAULT_DAILY_QUOTA,
      dailyQuotaSet: row?.daily_quota !== null && row?.daily_quota !== undefined,
      serialList: row?.serial_list === 1,
      serialsListed: await this.store.countSerials(scope, scopeId),
      registrationsToday: await this.store.registrationsOn(scope, scopeId, utcDay(this.clock.now())),
    };
  }

  private async requireScope(organizationId: string, scope: EnrollmentScope, scopeId: string): Promise<void> {
    const found =
      scope === 'product'
        ? await this.devices.productInOrganization(organizationId, scopeId)
        : await this.store.groupInOrganization(organizationId, scopeId);
    if (!found) throw new NotFoundError(scope === 'product' ? 'Product' : 'Enrollment group', { id: scopeId });
  }
}
