/**
 * The app clients an organization registers (operators with org:manage): public clients, each
 * with its exact redirect URIs, the scopes it may ask for, and whether it is the brand's own
 * (first-party: no consent screen). Disabling a client ends every grant it holds. Consumers list
 * the apps they let in and withdraw their consent, which ends that app's grants. Sign-out
 * everywhere and a password change end every grant of the user (`endGrantsOfUser`).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import { requirePermission, type Actor } from '../accounts/roles.js';
import { ACCOUNT_DELETED } from '../accounts/sessions.js';
import type { Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import {
  isAppScope,
  parseScopes,
  toClientView,
  type AppClientView,
  type AppGrantView,
  type AppScope,
  type CreateAppClientInput,
} from './model.js';
import type { AppClientRow, AppStore } from './store.js';
import type { Executor } from '../storage/executor.js';

export const MAX_REDIRECT_URIS = 10;
export const MAX_CLIENTS_PER_ORGANIZATION = 100;
const MAX_URI_LENGTH = 512;
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/;

/**
 * Why a redirect URI cannot be registered, or null when it can: https, a loopback IP literal over
 * http (RFC 8252 §7.3), or a private-use scheme in reverse-domain form (`com.brand.app:/cb`,
 * §7.1); never a fragment or user information. Matched later as the exact string registered.
 */
export function redirectUriProblem(uri: string): string | null {
  if (uri.length > MAX_URI_LENGTH) return `is longer than ${MAX_URI_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  if (url.hash || uri.includes('#')) return 'must not have a fragment';
  if (url.username || url.password) return 'must not carry user information';
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'https') return url.hostname ? null : 'needs a host';
  if (scheme === 'http')
    return url.hostname === '127.0.0.1' || url.hostname === '[::1]' ? null : 'may use http only on the loopback address 127.0.0.1 or [::1]';
  return PRIVATE_USE_SCHEME.test(scheme) ? null : 'must be https, http on a loopback address, or a reverse-domain private-use scheme';
}

function clientScopes(scopes: string[]): AppScope[] {
  const unknown = scopes.filter((s) => !isAppScope(s));
  if (unknown.length > 0 || scopes.length === 0)
    throw new ValidationError(
      `scopes must be a non-empty list of: devices:read, devices:control, devices:share, account${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
      { field: 'scopes' },
      ErrorCodes.appScopeInvalid,
    );
  return [...new Set(scopes as AppScope[])];
}

export class AppClientService {
  constructor(
    private readonly store: AppStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async create(actor: Actor, input: CreateAppClientInput): Promise<AppClientView> {
    requirePermission(actor, 'org:manage');
    const name = input.name.trim();
    if (!name) throw new ValidationError('name must not be blank', { field: 'name' });
    if (input.redirectUris.length === 0 || input.redirectUris.length > MAX_REDIRECT_URIS)
      throw new ValidationError(
        `redirectUris must hold 1 to ${MAX_REDIRECT_URIS} URIs`,
        { field: 'redirectUris' },
        ErrorCodes.appRedirectUriInvalid,
      );
    for (const [index, uri] of input.redirectUris.entries()) {
      const problem = redirectUriProblem(uri);
      if (problem)
        throw new ValidationError(
          `redirectUris[${index}] ${problem}`,
          { field: `redirectUris.${index}` },
          ErrorCodes.appRedirectUriInvalid,
        );
    }
    const scopes = clientScopes(input.scopes);
    if ((await this.store.clientsOf(actor.organizationId)).length >= MAX_CLIENTS_PER_ORGANIZATION)
      throw new ConflictError(`An organization may register at most ${MAX_CLIENTS_PER_ORGANIZATION} app clients`);
    const now = this.clock.now();
    const row: AppClientRow = {
      // Public and unguessable enough not to be enumerated; not a secret (PKCE protects public clients).
      id: `app_${randomBytes(12).toString('base64url')}`,
      organization_id: actor.organizationId,
      name,
      redirect_uris: JSON.stringify([...new Set(input.redirectUris)]),
      scopes: JSON.stringify(scopes),
      first_party: input.firstParty ? 1 : 0,
      status: 'active',
      created_by: actor.userId,
      created_at: now,
      updated_at: now,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.insertClient(row, trx);
      await this.audit.recordBy(
        actor,
        'app.client_created',
        { type: 'app_client', id: row.id },
        { name, redirectUris: input.redirectUris, scopes, firstParty: input.firstParty },
        trx,
      );
    });
    return toClientView(row);
  }

  async list(actor: Actor): Promise<AppClientView[]> {
    requirePermission(actor, 'org:manage');
    return (await this.store.clientsOf(actor.organizationId)).map(toClientView);
  }

  /** Disables a client: it can start no new authorization, and every grant it holds ends now. */
  async disable(actor: Actor, clientId: string): Promise<AppClientView> {
    requirePermission(actor, 'org:manage');
    const client = await this.store.client(clientId);
    if (!client || client.organization_id !== actor.organizationId) throw new NotFoundError('App client');
    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      await this.store.setClientStatus(clientId, 'disabled', now, trx);
      const grantsEnded = await this.store.revokeFamiliesOfClient(clientId, now, 'client_disabled', trx);
      await this.audit.recordBy(actor, 'app.client_disabled', { type: 'app_client', id: clientId }, { grantsEnded }, trx);
      return toClientView((await this.store.client(clientId, trx))!);
    });
  }

  /** The apps a consumer consented to or holds live grants for. */
  async grantsOf(actor: Actor): Promise<AppGrantView[]> {
    requireConsumer(actor);
    const now = this.clock.now();
    const consents = await this.store.consentsOf(actor.userId);
    const families = await this.store.liveFamiliesOf(actor.userId, now);
    const clientIds = [...new Set([...consents.map((c) => c.client_id), ...families.map((f) => f.client_id)])];
    const views: AppGrantView[] = [];
    for (const clientId of clientIds) {
      const client = await this.store.client(clientId);
      if (!client) continue;
      const consent = consents.find((c) => c.client_id === clientId);
      views.push({
        clientId,
        name: client.name,
        firstParty: client.first_party === 1,
        consentedScopes: consent ? parseScopes(consent.scopes) : [],
        activeGrants: families.filter((f) => f.client_id === clientId).length,
      });
    }
    return views;
  }

  /** Withdraws the consumer's consent to an app and ends every grant the app holds for them. */
  async withdraw(actor: Actor, clientId: string): Promise<{ grantsEnded: number }> {
    requireConsumer(actor);
    const client = await this.store.client(clientId);
    if (!client || client.organization_id !== actor.organizationId) throw new NotFoundError('App');
    return this.store.db.transaction().execute(async (trx) => {
      const consents = await this.store.deleteConsent(actor.userId, clientId, trx);
      const grantsEnded = await this.store.revokeFamiliesOfUser(actor.userId, this.clock.now(), 'consent_withdrawn', clientId, trx);
      if (consents === 0 && grantsEnded === 0) throw new NotFoundError('App');
      await this.audit.recordBy(actor, 'app.consent_withdrawn', { type: 'app_client', id: clientId }, { grantsEnded }, trx);
      return { grantsEnded };
    });
  }

  /**
   * Ends every grant of a user (sign-out, sign-out everywhere, password change or reset,
   * disabling); for an account being deleted, deletes its consents, codes and grants as well.
   */
  async endGrantsOfUser(userId: string, reason: string, db: Executor = this.store.db): Promise<number> {
    const now = this.clock.now();
    const live = await this.store.liveFamiliesOf(userId, now, db);
    if (reason === ACCOUNT_DELETED) await this.store.forgetUser(userId, db);
    if (live.length === 0) return 0;
    const ended = reason === ACCOUNT_DELETED ? live.length : await this.store.revokeFamiliesOfUser(userId, now, reason, undefined, db);
    await this.audit.record(
      {
        organizationId: live[0]!.organization_id,
        actor: { type: 'user', id: userId },
        action: 'app.grants_ended',
        target: { type: 'user', id: userId },
        details: { reason, grantsEnded: ended, clients: [...new Set(live.map((f) => f.client_id))] },
      },
      db,
    );
    return ended;
  }
}

function requireConsumer(actor: Actor): void {
  if (actor.kind !== 'consumer') throw new ForbiddenError('This is for consumer accounts');
}
