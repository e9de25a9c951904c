/**
 * My account and its security: my email address (changed through a mailed link,
 * src/account/EmailChange.tsx), the authenticator app (enrolment with a QR code of the otpauth URI, or
 * new recovery codes behind a step-up), my passkeys with the organization's passkey policy (set
 * here by the roles with org:manage, behind a step-up: ./PasskeyPolicy.tsx), my sessions (revoke any but this one), my password, and my API keys (create behind a step-up, the secret shown
 * once; revoke). All but the API keys are the companion app's too (src/account/).
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, PERMISSIONS, roleHolds, type ApiKeyView, type OrganizationView, type Permission, type UserView } from '../api';
import { ChangeEmail } from '../account/EmailChange';
import { Passkeys, type PolicyForReader } from '../account/Passkeys';
import { ChangePassword } from '../account/Password';
import { Sessions } from '../account/Sessions';
import { TwoFactor } from '../account/TwoFactor';
import { Alert, Table, Button, Card, ConfirmDialog, Field, messageOf, When } from '../kit';
import { PasskeyPolicyCard } from './PasskeyPolicy';

export function Security(props: { user: UserView }) {
  const [policy, setRequiredRoles] = usePasskeyPolicy(props.user.role);
  return (
    <>
      <h1>Account security</h1>
      <ChangeEmail email={props.user.email} />
      <TwoFactor title="Two-factor authentication" />
      <Passkeys policy={policy} />
      {policy && roleHolds(props.user.role, 'org:manage') && (
        <PasskeyPolicyCard requiredRoles={policy.passkeyRequiredRoles} onChanged={setRequiredRoles} />
      )}
      <Sessions />
      <ChangePassword hint="At least 12 characters" />
      <ApiKeys />
    </>
  );
}

/**
 * The organization's passkey policy, for roles that may read the organization (org:read; otherwise
 * null: not shown), and a setter for the roles a saved policy answers.
 */
function usePasskeyPolicy(myRole: string | null): [PolicyForReader | null, (requiredRoles: string[]) => void] {
  const [policy, setPolicy] = useState<PolicyForReader | null>(null);
  useEffect(() => {
    api<OrganizationView>('GET', '/org')
      .then((org) => setPolicy({ passkeyRequiredRoles: org.passkeyRequiredRoles, myRole }))
      .catch(() => setPolicy(null));
  }, [myRole]);
  return [policy, (passkeyRequiredRoles) => setPolicy({ passkeyRequiredRoles, myRole })];
}

function ApiKeys() {
  const [keys, setKeys] = useState<ApiKeyView[]>([]);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Permission[]>(['devices:read']);
  const [days, setDays] = useState('30');
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKeyView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ apiKeys: ApiKeyView[] }>('GET', '/me/api-keys')
      .then((answer) => setKeys(answer.apiKeys))
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);

  const toggle = (scope: Permission) => setScopes(scopes.includes(scope) ? scopes.filter((s) => s !== scope) : [...scopes, scope]);
  const ask = (event: FormEvent) => {
    event.preventDefault();
    setSecret(null);
    setCreating(true);
  };

  return (
    <Card title="API keys">
      {error && <Alert>{error}</Alert>}
      {secret && (
        <Alert kind="info">
          Key “{secret.name}” created. Copy its secret now: it is not stored and not shown again.{' '}
          <code className="secret" data-testid="api-key-secret">
            {secret.secret}
          </code>
        </Alert>
      )}
      <form onSubmit={ask} aria-label="Create an API key" className="stack">
        <Field label="Key name" value={name} onChange={setName} required name="key-name" />
        <fieldset className="scopes">
          <legend>Permissions (only those your role has)</legend>
          {PERMISSIONS.map((scope) => (
            <label key={scope} className="check">
              <input type="checkbox" checked={scopes.includes(scope)} onChange={() => toggle(scope)} /> {scope}
            </label>
          ))}
        </fieldset>
        <Field label="Expires in (days)" type="number" value={days} onChange={setDays} required hint="1 to 365 days" />
        <Button type="submit" disabled={!name.trim() || scopes.length === 0}>
          Create key…
        </Button>
      </form>
      <Table label="My API keys" caption="My API keys" columns={['Name', 'Permissions', 'Created', 'Expires', 'Last used', 'State', '']}>
        {keys.map((key) => (
          <tr key={key.id} data-testid="api-key">
            <td>{key.name}</td>
            <td className="wrap">{key.scopes.join(', ')}</td>
            <td>
              <When at={key.createdAt} />
            </td>
            <td>
              <When at={key.expiresAt} />
            </td>
            <td>
              <When at={key.lastUsedAt} never="never" />
            </td>
            <td>{key.revoked ? 'revoked' : key.expired ? 'expired' : 'active'}</td>
            <td>
              {!key.revoked && !key.expired && (
                <Button variant="secondary" onClick={() => setRevoking(key)}>
                  Revoke
                </Button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      {keys.length === 0 && <p>No API key yet.</p>}
      <ConfirmDialog
        title={`Create the API key “${name.trim()}”?`}
        open={creating}
        onClose={() => setCreating(false)}
        confirmLabel="Create key"
        variant="primary"
        stepUp
        onConfirm={async () => {
          const created = await api<{ apiKey: ApiKeyView; secret: string }>('POST', '/me/api-keys', {
            name: name.trim(),
            scopes,
            expiresInDays: Number(days),
          });
          setSecret({ name: created.apiKey.name, secret: created.secret });
          setCreating(false);
          setName('');
          load();
        }}
      >
        <p>
          A key acts as you with {scopes.join(', ')} for {days} days, without a second factor. It can never do what needs a step-up.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        title={`Revoke the API key “${revoking?.name ?? ''}”?`}
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        confirmLabel="Revoke key"
        onConfirm={async () => {
          await api('DELETE', `/me/api-keys/${encodeURIComponent(revoking!.id)}`);
          setRevoking(null);
          load();
        }}
      >
        <p>Programs using this key are refused from now on.</p>
      </ConfirmDialog>
    </Card>
  );
}
