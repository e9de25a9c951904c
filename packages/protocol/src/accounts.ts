/**
 * Operators' roles and the permissions an actor (a role, an API key's scopes) may hold: the server
 * checks them (ROLE_PERMISSIONS maps each role to its permissions), and the console and other
 * clients name them when they invite an operator or create a scoped API key, and offer an action
 * only to the roles that hold its permission.
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

const READ_ONLY: Permission[] = [
  'org:read',
  'users:read',
  'audit:read',
  'devices:read',
  'firmware:read',
  'rollouts:read',
  'assessment:read',
];

export const ROLE_PERMISSIONS: Record<OperatorRole, ReadonlySet<Permission>> = {
  owner: new Set(PERMISSIONS),
  admin: new Set(PERMISSIONS),
  operator: new Set<Permission>(['org:read', 'devices:read', 'devices:write', 'firmware:read', 'rollouts:read', 'assessment:read']),
  release_engineer: new Set<Permission>([
    'org:read',
    'devices:read',
    'firmware:read',
    'firmware:release',
    'rollouts:read',
    'rollouts:manage',
  ]),
  auditor: new Set<Permission>(READ_ONLY),
};

/** Whether an operator of `role` holds `permission` (false for a consumer's or an unknown role). */
export function roleHolds(role: string, permission: Permission): boolean {
  return (OPERATOR_ROLES as readonly string[]).includes(role) && ROLE_PERMISSIONS[role as OperatorRole].has(permission);
}
