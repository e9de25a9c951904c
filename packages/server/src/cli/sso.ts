/**
 * `bulwark sso show|configure|remove|mfa-policy|passkey-policy|report --org <slug>`: an organization's single
 * sign-on (its OpenID provider, claim → role mapping, SSO only and break-glass owner), the roles
 * that must use MFA or a passkey, and the operators' security report, through the same services as the API
 * (audited as `cli`). The client secret is read from standard input or an environment variable,
 * never from the command line.
 */
import type { Command } from 'commander';
import { isOperatorRole, OPERATOR_ROLES } from '../accounts/roles.js';
import type { SecurityReport } from '../accounts/security-report.js';
import type { SsoConfigInput } from '../accounts/sso-config.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { action, actorForOrganization, EXIT, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

interface ConfigureFlags extends OrgFlags {
  issuer: string;
  clientId: string;
  clientSecretEnv?: string;
  clientSecretStdin?: boolean;
  redirectUri?: string;
  scopes?: string;
  roleClaim?: string;
  map: string[];
  defaultRole?: string;
  mfaAcr: string[];
  ssoOnly?: boolean;
  breakGlass?: string;
  maxSessionMinutes?: string;
  apiKeyReauthDays?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new ValidationError('Pipe the client secret on standard input', { field: 'clientSecret' });
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function roleMapping(pairs: string[]): Record<string, string> {
  const mapping: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.lastIndexOf('=');
    const role = pair.slice(at + 1);
    if (at <= 0 || !isOperatorRole(role))
      throw new ValidationError(`--map takes VALUE=ROLE with ROLE one of ${OPERATOR_ROLES.join(', ')} (got "${pair}")`, { field: 'map' });
    mapping[pair.slice(0, at)] = role;
  }
  return mapping;
}

export function reportText(report: SecurityReport): string {
  const header = `MFA required for: ${report.mfaRequiredRoles.join(', ') || 'nobody'}; SSO ${report.ssoConfigured ? (report.ssoOnly ? 'only' : 'on') : 'off'}`;
  const lines = report.operators.map((o) => {
    const factors = Object.entries(o.factors)
      .filter(([, on]) => on)
      .map(([f]) => f)
      .join('+');
    return [
      o.email,
      o.role ?? '-',
      o.status,
      factors || 'none',
      o.lastSignInAt ?? 'never',
      o.meetsMfaPolicy ? 'meets policy' : 'MFA MISSING',
      o.breakGlass ? 'break-glass' : '',
    ]
      .join('\t')
      .trimEnd();
  });
  return [header, ...lines].join('\n');
}

export function registerSsoCommands(program: Command): void {
  const sso = program.command('sso').description("operators' single sign-on through the organization's OpenID provider");

  orgCommand(sso, 'show', 'the single sign-on configuration (never the client secret)').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const view = await platform.accounts.ssoConfig.getConfig(await actorForOrganization(platform, flags.org));
        print(flags, view, () =>
          Object.entries(view)
            .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
            .join('\n'),
        );
        return EXIT.ok;
      }),
    ),
  );

  orgCommand(sso, 'configure', 'set the provider and policy (replaces the previous configuration)')
    .requiredOption('--issuer <url>', "the provider's issuer URL (https)")
    .requiredOption('--client-id <id>', 'the client registered at the provider for Bulwark')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--client-secret-env <variable>', 'read the client secret from this environment variable')
    .option('--redirect-uri <url>', 'default: <publicUrl>/api/v1/auth/sso/<org>/callback')
    .option('--scopes <list>', 'space-separated, default "openid email profile"')
    .option('--role-claim <claim>', 'the ID token claim whose values map to roles', 'groups')
    .option('--map <value=role>', 'a claim value and the role it grants (repeatable)', collect, [])
    .option('--default-role <role>', 'role when no value maps (default: refuse the sign-in)')
    .option('--mfa-acr <value>', 'an acr value the provider uses for MFA (repeatable)', collect, [])
    .option('--sso-only', "refuse passwords for the organization's operators (except the break-glass owner)")
    .option('--break-glass <email>', 'the one owner who may still sign in with a password (every use audited)')
    .option('--max-session-minutes <n>', 'bound on an SSO session (5-1440, default 60)')
    .option(
      '--api-key-reauth-days <n>',
      "an SSO operator's API keys work while their last provider sign-in is this recent (1-90, default 7)",
    )
    .action(
      action((flags: ConfigureFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          let clientSecret: string | undefined;
          if (flags.clientSecretEnv) clientSecret = process.env[flags.clientSecretEnv] || undefined;
          else if (flags.clientSecretStdin) clientSecret = (await readStdin()) || undefined;
          let breakGlassUserId: string | null = null;
          if (flags.breakGlass) {
            const user = await platform.accounts.store.userByEmail(actor.organizationId, flags.breakGlass);
            if (!user) throw new NotFoundError(`User ${flags.breakGlass} in organization "${flags.org}"`);
            breakGlassUserId = user.id;
          }
          const input: SsoConfigInput = {
            issuer: flags.issuer,
            clientId: flags.clientId,
            ...(clientSecret ? { clientSecret } : {}),
            ...(flags.redirectUri ? { redirectUri: flags.redirectUri } : {}),
            ...(flags.scopes ? { scopes: flags.scopes.split(/\s+/).filter(Boolean) } : {}),
            ...(flags.roleClaim ? { roleClaim: flags.roleClaim } : {}),
            roleMapping: roleMapping(flags.map),
            defaultRole: flags.defaultRole ?? null,
            mfaAcrValues: flags.mfaAcr,
            ssoOnly: flags.ssoOnly === true,
            breakGlassUserId,
            ...(flags.maxSessionMinutes ? { maxSessionMinutes: Number(flags.maxSessionMinutes) } : {}),
            ...(flags.apiKeyReauthDays ? { apiKeyReauthDays: Number(flags.apiKeyReauthDays) } : {}),
          };
          const view = await platform.accounts.ssoConfig.configure(actor, input);
          print(
            flags,
            view,
            () => `Single sign-on configured for "${flags.org}" through ${view.issuer}${view.ssoOnly ? ' (SSO only)' : ''}`,
          );
          return EXIT.ok;
        }),
      ),
    );

  orgCommand(sso, 'remove', 'remove single sign-on (passwords work again for every operator)').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        await platform.accounts.ssoConfig.removeConfig(await actorForOrganization(platform, flags.org));
        print(flags, { removed: true }, () => `Single sign-on removed for "${flags.org}"`);
        return EXIT.ok;
      }),
    ),
  );

  orgCommand(sso, 'mfa-policy', 'name the roles that must use MFA (Bulwark TOTP or a passkey, or MFA asserted by the provider)')
    .requiredOption('--roles <list>', `comma-separated among ${OPERATOR_ROLES.join(', ')} ("" for none)`)
    .action(
      action((flags: OrgFlags & { roles: string }) =>
        withPlatform(flags, async (platform) => {
          const org = await platform.accounts.service.setMfaPolicy(await actorForOrganization(platform, flags.org), roleList(flags.roles));
          print(flags, org, () => `MFA required for: ${org.mfaRequiredRoles.join(', ') || 'nobody'}`);
          return EXIT.ok;
        }),
      ),
    );

  orgCommand(sso, 'passkey-policy', 'name the roles that must sign in with a passkey (members without one register one at next sign-in)')
    .requiredOption('--roles <list>', `comma-separated among ${OPERATOR_ROLES.join(', ')} ("" for none)`)
    .action(
      action((flags: OrgFlags & { roles: string }) =>
        withPlatform(flags, async (platform) => {
          const org = await platform.accounts.service.setPasskeyPolicy(
            await actorForOrganization(platform, flags.org),
            roleList(flags.roles),
          );
          print(flags, org, () => `Passkey required for: ${org.passkeyRequiredRoles.join(', ') || 'nobody'}`);
          return EXIT.ok;
        }),
      ),
    );

  orgCommand(
    sso,
    'report',
    "every operator's factors (password, TOTP, passkey, SSO), last sign-in and whether they meet the MFA policy",
  ).action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const report = await platform.accounts.securityReport.report(await actorForOrganization(platform, flags.org));
        print(flags, report, () => reportText(report));
        return EXIT.ok;
      }),
    ),
  );
}

/** A `--roles` list: comma-separated, blanks dropped ("" for none); the service checks each role. */
function roleList(roles: string): string[] {
  return roles
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
}
