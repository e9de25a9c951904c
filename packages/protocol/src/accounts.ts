/**
 * Operators' roles and the permissions an actor (a role, an API key's scopes) may hold: the server
 * checks them (server/src/accounts/roles.ts maps each role to its permissions), and the console and
 * other clients name them when they invite an operator or create a scoped API key.
 */
export const OPERATOR_ROLES = ['owner', 'admin', 'operator', 'release_engineer', 'auditor'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export const PERMISSIONS = [
  'org:read',
  'org:manage',
  'users:read',
  'users:manage',
  'audit:read',
  'devices:read',
  'devices:write',
  'firmware:read',
  'firmware:release',
  'rollouts:read',
  'rollouts:manage',
  'assessment:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];
