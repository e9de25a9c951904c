/**
 * Consumer privacy (ETSI EN 303 645 6.1-1/2/3/5; docs/binding.md "Privacy"). A product declares
 * what it senses and which telemetry values it collects for which purpose; consumers read that
 * before they claim a device. Required purposes come with the binding (claiming accepts them,
 * unbinding ends them); optional ones stay off until the device's owner consents, and withdrawing
 * consent stops the collection it covered: the platform then stores none of those values
 * (telemetry/collection.ts drops them at ingest, and the live stream no longer shows them).
 * Undeclared values are never stored for a product that has a declaration. Consents are the
 * owner's: they lapse when the owner changes (a transfer, an unbind), and are audited.
 */
import { ErrorCodes, type DevicePrivacyView, type PrivacyDeclaration, type PrivacyView, type PurposeDeclaration } from '@bulwark/protocol';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import type { DevicesService } from '../devices/service.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { AllowedNames, CollectionFilter, CollectionRules } from '../telemetry/collection.js';
import { standingFor, standingOf } from './access.js';
import type { PrivacyStore } from './privacy-store.js';
import type { BindingStore } from './store.js';
import type { Executor } from '../storage/executor.js';

/** What a product collects and why, and a device's consents: wire shapes the apps read too (@bulwark/protocol). */
export type { DevicePrivacyView, PrivacyDeclaration, PrivacyView, PurposeDeclaration };

const PURPOSE_ID = /^[a-z][a-z0-9_-]{0,31}$/;
const VALUE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const LIMITS = { senses: 32, purposes: 16, telemetry: 64, description: 500 } as const;

/** Checks a declaration's shape and limits; throws binding.privacy_invalid naming the first problem. */
export function checkDeclaration(input: PrivacyDeclaration): PrivacyDeclaration {
  const invalid = (message: string, field: string) => new ValidationError(message, { field }, ErrorCodes.privacyInvalid);
  if (!Array.isArray(input.senses) || input.senses.length > LIMITS.senses) throw invalid(`senses: at most ${LIMITS.senses}`, 'senses');
  for (const sense of input.senses)
    if (typeof sense !== 'string' || sense.trim().length === 0 || sense.length > 64)
      throw invalid('each sense is 1-64 characters', 'senses');
  if (!Array.isArray(input.purposes) || input.purposes.length === 0 || input.purposes.length > LIMITS.purposes)
    throw invalid(`purposes: 1 to ${LIMITS.purposes}`, 'purposes');
  const ids = new Set<string>();
  for (const [i, purpose] of input.purposes.entries()) {
    if (!PURPOSE_ID.test(purpose.id))
      throw invalid('a purpose id is a-z, 0-9, _ and -, starting with a letter, at most 32', `purposes[${i}].id`);
    if (ids.has(purpose.id)) throw invalid(`purpose ${purpose.id} is declared twice`, `purposes[${i}].id`);
    ids.add(purpose.id);
    if (purpose.description.trim().length === 0 || purpose.description.length > LIMITS.description)
      throw invalid(`a purpose's description is 1-${LIMITS.description} characters`, `purposes[${i}].description`);
    if (purpose.telemetry.length > LIMITS.telemetry)
      throw invalid(`at most ${LIMITS.telemetry} telemetry names per purpose`, `purposes[${i}].telemetry`);
    for (const name of purpose.telemetry)
      if (!VALUE_NAME.test(name)) throw invalid(`${JSON.stringify(name)} is not a telemetry value name`, `purposes[${i}].telemetry`);
  }
  return {
    senses: input.senses.map((s) => s.trim()),
    purposes: input.purposes.map((p) => ({
      id: p.id,
      description: p.description.trim(),
      required: p.required,
      telemetry: [...new Set(p.telemetry)],
    })),
  };
}

export class PrivacyService implements CollectionRules {
  constructor(
    private readonly store: PrivacyStore,
    private readonly binding: BindingStore,
    private readonly devices: DevicesService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly filter: CollectionFilter,
  ) {}

  /** An operator sets (or replaces) a product's declaration; audited, effective at once on this node. */
  async declare(actor: Actor, productId: string, input: PrivacyDeclaration): Promise<PrivacyView> {
    requirePermission(actor, 'devices:write');
    const declaration = checkDeclaration(input);
    if (!(await this.devices.productOf(actor.organizationId, productId))) throw new NotFoundError('Product', { productId });
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.saveDeclaration(
        { product_id: productId, organization_id: actor.organizationId, declaration: JSON.stringify(declaration), updated_at: now },
        trx,
      );
      await this.audit.recordBy(
        actor,
        'product.privacy_declared',
        { type: 'product', id: productId },
        { purposes: declaration.purposes.map((p) => ({ id: p.id, required: p.required, telemetry: p.telemetry })) },
        trx,
      );
    });
    this.filter.forgetAll();
    return { productId, declared: true, ...declaration, updatedAt: iso(now) };
  }

  /**
   * A product's declaration, for an operator (devices:read) or any consumer of the organization
   * (what they read before claiming: the product ID is on the box or in the QR code).
   */
  async productPrivacy(actor: Actor, productId: string): Promise<PrivacyView> {
    if (actor.kind === 'operator') requirePermission(actor, 'devices:read');
    if (!(await this.devices.productOf(actor.organizationId, productId))) throw new NotFoundError('Product', { productId });
    const row = await this.store.declaration(actor.organizationId, productId);
    if (!row) return { productId, declared: false, senses: [], purposes: [], updatedAt: null };
    return { productId, declared: true, ...(JSON.parse(row.declaration) as PrivacyDeclaration), updatedAt: iso(row.updated_at) };
  }

  /** A bound device's declaration with its owner's decisions and what is collected now; any member may read it. */
  async devicePrivacy(actor: Actor, deviceId: string): Promise<DevicePrivacyView> {
    await standingOf(this.binding, actor, deviceId);
    return this.viewOf(actor.organizationId, deviceId);
  }

  /**
   * The owner grants or withdraws optional purposes (`{ analytics: false }`); a required purpose
   * cannot be withdrawn (binding.purpose_required: unbinding ends it). Audited; the collection
   * follows at once on this node.
   */
  async setConsents(actor: Actor, deviceId: string, decisions: Record<string, boolean>): Promise<DevicePrivacyView> {
    await standingFor(this.binding, this.audit, actor, deviceId, 'manage', 'decide on consents');
    const { declaration } = await this.declarationOfDevice(actor.organizationId, deviceId);
    const purposes = new Map((declaration?.purposes ?? []).map((p) => [p.id, p]));
    for (const [id, granted] of Object.entries(decisions)) {
      const purpose = purposes.get(id);
      if (!purpose) throw new ValidationError(`The product declares no purpose ${id}`, { purpose: id }, ErrorCodes.purposeUnknown);
      if (purpose.required && !granted)
        throw new ConflictError(
          `Purpose ${id} is required for the device to work: it ends only when you unbind the device`,
          { purpose: id },
          ErrorCodes.purposeRequired,
        );
    }
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      for (const [id, granted] of Object.entries(decisions)) {
        if (purposes.get(id)!.required) continue;
        await this.store.saveConsent(
          {
            device_id: deviceId,
            purpose: id,
            organization_id: actor.organizationId,
            granted: granted ? 1 : 0,
            decided_by: actor.userId,
            decided_at: now,
          },
          trx,
        );
      }
      await this.audit.recordBy(
        actor,
        'binding.consent_changed',
        { type: 'device', id: deviceId },
        { decisions, ...(actor.app ? { clientId: actor.app.clientId } : {}) },
        trx,
      );
    });
    this.filter.forget(deviceId);
    return this.viewOf(actor.organizationId, deviceId);
  }

  /**
   * What every device of the product may keep when no consent can change it: everything (null)
   * without a declaration, the required purposes' names when it declares no optional purpose;
   * undefined when it does (each device's owner decides).
   */
  async productNames(organizationId: string, productId: string): Promise<AllowedNames | undefined> {
    const row = await this.store.declaration(organizationId, productId);
    if (!row) return null;
    const declaration = JSON.parse(row.declaration) as PrivacyDeclaration;
    if (declaration.purposes.some((p) => !p.required)) return undefined;
    return new Set(declaration.purposes.flatMap((p) => p.telemetry));
  }

  /** The names a device's telemetry may keep: what required purposes and the current owner's consents cover. */
  async allowedNames(deviceId: string, organizationId: string): Promise<AllowedNames> {
    const { declaration, granted } = await this.declarationOfDevice(organizationId, deviceId);
    if (!declaration) return null;
    const allowed = new Set<string>();
    for (const purpose of declaration.purposes)
      if (purpose.required || granted.has(purpose.id)) for (const name of purpose.telemetry) allowed.add(name);
    return allowed;
  }

  /** Account deletion: the decisions the consumer made go with the account (they lapsed with the unbind anyway). */
  async forgetUser(userId: string, trx: Executor): Promise<void> {
    await this.store.deleteConsentsBy(userId, trx);
  }

  private async viewOf(organizationId: string, deviceId: string): Promise<DevicePrivacyView> {
    const { productId, declaration, granted, decided } = await this.declarationOfDevice(organizationId, deviceId);
    const allowed = await this.allowedNames(deviceId, organizationId);
    return {
      deviceId,
      productId,
      declared: declaration !== null,
      senses: declaration?.senses ?? [],
      purposes: (declaration?.purposes ?? []).map((p) => ({
        ...p,
        granted: p.required || granted.has(p.id),
        decidedAt: iso(decided.get(p.id) ?? null),
      })),
      collected: allowed ? [...allowed].sort() : null,
    };
  }

  /** The device's product declaration and the purposes its current owner granted (decisions of an earlier owner lapse). */
  private async declarationOfDevice(
    organizationId: string,
    deviceId: string,
  ): Promise<{ productId: string; declaration: PrivacyDeclaration | null; granted: Set<string>; decided: Map<string, number> }> {
    const [device] = await this.devices.viewsOf(organizationId, [deviceId]);
    if (!device) throw new NotFoundError('Device', { deviceId });
    const row = await this.store.declaration(organizationId, device.productId);
    const granted = new Set<string>();
    const decided = new Map<string, number>();
    if (!row) return { productId: device.productId, declaration: null, granted, decided };
    const owner = await this.binding.owner(deviceId);
    if (owner)
      for (const consent of await this.store.consents(deviceId)) {
        if (consent.decided_by !== owner.user_id) continue;
        decided.set(consent.purpose, consent.decided_at);
        if (consent.granted === 1) granted.add(consent.purpose);
      }
    return { productId: device.productId, declaration: JSON.parse(row.declaration) as PrivacyDeclaration, granted, decided };
  }
}
