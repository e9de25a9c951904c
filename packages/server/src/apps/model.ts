/**
 * The words of app authorization and the views callers see: registered clients, signing keys,
 * consumers' grants. Secrets (codes, refresh tokens, private keys) never appear in a view.
 */
import { iso } from '../clock.js';
import { APP_SCOPES, type AppScope } from '../accounts/roles.js';
import type { AppClientsTable, AppSigningKeysTable } from '../storage/schema.js';

export type AppClientStatus = AppClientsTable['status'];
export type { AppScope };

export interface AppClientView {
  clientId: string;
  name: string;
  redirectUris: string[];
  scopes: AppScope[];
  firstParty: boolean;
  status: AppClientStatus;
  createdAt: string;
  updatedAt: string;
}

export interface CreateAppClientInput {
  name: string;
  redirectUris: string[];
  scopes: string[];
  firstParty: boolean;
}

/** A signing key's life: it signs while `active`, only verifies while `verifying`, and verifies nothing once `retired`. */
export type SigningKeyStatus = 'active' | 'verifying' | 'retired';

export interface SigningKeyView {
  kid: string;
  algorithm: string;
  status: SigningKeyStatus;
  createdAt: string;
  rotatedAt: string | null;
  retiredAt: string | null;
}

/** What a consumer sees of an app they let in. */
export interface AppGrantView {
  clientId: string;
  name: string;
  firstParty: boolean;
  consentedScopes: AppScope[];
  activeGrants: number;
}

export function isAppScope(value: string): value is AppScope {
  return (APP_SCOPES as readonly string[]).includes(value);
}

export function parseScopes(json: string): AppScope[] {
  return (JSON.parse(json) as string[]).filter(isAppScope);
}

export function toClientView(row: AppClientsTable): AppClientView {
  return {
    clientId: row.id,
    name: row.name,
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    scopes: parseScopes(row.scopes),
    firstParty: row.first_party === 1,
    status: row.status,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function keyStatus(row: Pick<AppSigningKeysTable, 'rotated_at' | 'retired_at'>): SigningKeyStatus {
  if (row.retired_at !== null) return 'retired';
  return row.rotated_at === null ? 'active' : 'verifying';
}

export function toKeyView(row: AppSigningKeysTable): SigningKeyView {
  return {
    kid: row.id,
    algorithm: row.algorithm,
    status: keyStatus(row),
    createdAt: iso(row.created_at),
    rotatedAt: iso(row.rotated_at),
    retiredAt: iso(row.retired_at),
  };
}

/** What the hosted authorization page shows before anyone signs in: which app asks, for which brand. No secrets, no redirect URIs. */
export interface AppClientPublicView {
  clientId: string;
  name: string;
  firstParty: boolean;
  organization: { slug: string; name: string };
}

/** The brand an app client belongs to (the accounts domain answers). */
export interface OrganizationLookup {
  organizationById(id: string): Promise<{ slug: string; name: string } | undefined>;
}

/** What the authorization server needs to know of a user: that they are still an active consumer of the client's organization. */
export interface ConsumerLookup {
  userById(id: string): Promise<{ id: string; organization_id: string; kind: string; status: string } | undefined>;
}

/** The space-separated scopes asked for, each known and within `allowed`; or why not. */
export function scopesWithin(scope: string, allowed: AppScope[]): AppScope[] | string {
  const asked = scope.split(' ').filter((s) => s !== '');
  const refused = asked.filter((s) => !isAppScope(s) || !allowed.includes(s));
  if (asked.length === 0 || refused.length > 0)
    return `scope may hold only ${allowed.join(', ')}${refused.length ? ` (refused: ${refused.join(', ')})` : ''}`;
  return [...new Set(asked as AppScope[])];
}
