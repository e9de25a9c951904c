/**
 * My account's security: the authenticator (enrolment with a QR code of the otpauth URI, or new
 * recovery codes behind a step-up), my sessions (revoke any but this one), and my API keys
 * (create behind a step-up, the secret shown once; revoke).
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, PERMISSIONS, type AccountUser, type ApiKey, type Permission, type SessionAnswer, type SessionInfo } from '../api';
import { Alert, Table, Button, Card, ConfirmDialog, Field, messageOf, QrCode, When } from '../kit';

export function Security() {
  return (
    <>
      <h1>Account security</h1>
      <TwoFactor />
      <Sessions />
      <ApiKeys />
    </>
  );
}

function RecoveryCodes(props: { codes: string[] }) {
  return (
    <section aria-label="Recovery codes">
      <Alert kind="info">Keep these recovery codes somewhere safe: each works once, and they are not shown again.</Alert>
      <ul className="codes">
        {props.codes.map((code) => (
          <li key={code}>
            <code>{code}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}

function TwoFactor() {
  const [user, setUser] = useState<AccountUser | null>(null);
  const [enrolment, setEnrolment] = useState<{ secret: string; otpauthUri: string } | null>(null);
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState<string[]>([]);
  const [replacing, setReplacing] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setUser((await api<SessionAnswer & { user: AccountUser }>('GET', '/auth/session')).user);
  }, []);
  useEffect(() => {
    load().catch((caught: unknown) => setError(messageOf(caught)));
  }, [load]);

  const begin = async () => {
    setError(null);
    try {
      setEnrolment(await api('POST', '/me/mfa/totp'));
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  const confirm = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      setCodes((await api<{ recoveryCodes: string[] }>('POST', '/me/mfa/totp/confirm', { code })).recoveryCodes);
      setEnrolment(null);
      setCode('');
      await load();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };

  return (
    <Card title="Two-factor authentication">
      {error && <Alert>{error}</Alert>}
      {user && !user.mfaEnabled && !enrolment && (
        <>
          <p>No authenticator is set up: signing in needs only your password.</p>
          <Button onClick={() => void begin()}>Set up an authenticator</Button>
        </>
      )}
      {enrolment && <Enrolment enrolment={enrolment} code={code} onCode={setCode} onSubmit={confirm} />}
      {user?.mfaEnabled && (
        <>
          <p data-testid="mfa-state">An authenticator app is set up: sign-in and dangerous actions ask for its code.</p>
          <Button variant="secondary" onClick={() => setReplacing(true)}>
            Replace recovery codes…
          </Button>
        </>
      )}
      {codes.length > 0 && <RecoveryCodes codes={codes} />}
      <ConfirmDialog
        title="Replace your recovery codes?"
        open={replacing}
        onClose={() => setReplacing(false)}
        confirmLabel="Replace codes"
        stepUp
        onConfirm={async () => {
          setCodes((await api<{ recoveryCodes: string[] }>('POST', '/me/mfa/recovery-codes')).recoveryCodes);
          setReplacing(false);
        }}
      >
        <p>Your current recovery codes stop working at once.</p>
      </ConfirmDialog>
    </Card>
  );
}

/** The enrolment step shared with the first sign-in: QR code, the key as text, the first code. */
export function Enrolment(props: {
  enrolment: { secret: string; otpauthUri: string };
  code: string;
  onCode: (code: string) => void;
  onSubmit: (event: FormEvent) => void;
  busy?: boolean;
}) {
  return (
    <form onSubmit={props.onSubmit} aria-label="Set up two-factor authentication">
      <p>Scan this code with your authenticator app, or type the key into it; then enter the code it shows.</p>
      <QrCode value={props.enrolment.otpauthUri} label="QR code of the authenticator key" />
      <p>
        Key: <code className="secret">{props.enrolment.secret}</code>
      </p>
      <details>
        <summary>Show the link (to open on this device)</summary>
        <code className="secret" data-testid="otpauth-uri">
          {props.enrolment.otpauthUri}
        </code>
      </details>
      <Field
        label="Authentication code"
        value={props.code}
        onChange={props.onCode}
        inputMode="numeric"
        autoComplete="one-time-code"
        required
      />
      <Button type="submit" disabled={props.busy}>
        Confirm
      </Button>
    </form>
  );
}

function Sessions() {
  const [sessions, setSessions] = useState<SessionInfo[]>([]);
  const [revoking, setRevoking] = useState<SessionInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ sessions: SessionInfo[] }>('GET', '/me/sessions')
      .then((answer) => setSessions(answer.sessions))
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);

  return (
    <Card title="Sessions">
      {error && <Alert>{error}</Alert>}
      <Table
        label="My active sessions"
        caption="My active sessions"
        columns={['Signed in', 'Last active', 'Kind', 'Address', 'Browser or client', '']}
      >
        {sessions.map((session) => (
          <tr key={session.id} data-testid="session">
            <td>
              <When at={session.createdAt} />
            </td>
            <td>
              <When at={session.lastSeenAt} />
            </td>
            <td>{session.transport === 'cookie' ? 'browser' : 'token'}</td>
            <td>{session.sourceIp}</td>
            <td className="wrap">{session.userAgent || '—'}</td>
            <td>
              {session.current ? (
                <span className="badge">this session</span>
              ) : (
                <Button variant="secondary" onClick={() => setRevoking(session)}>
                  Revoke
                </Button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <ConfirmDialog
        title="Revoke this session?"
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        confirmLabel="Revoke session"
        onConfirm={async () => {
          await api('DELETE', `/me/sessions/${encodeURIComponent(revoking!.id)}`);
          setRevoking(null);
          load();
        }}
      >
        <p>
          The session from {revoking?.sourceIp} ({revoking?.userAgent || 'unknown client'}) is signed out at once.
        </p>
      </ConfirmDialog>
    </Card>
  );
}

function ApiKeys() {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Permission[]>(['devices:read']);
  const [days, setDays] = useState('30');
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ apiKeys: ApiKey[] }>('GET', '/me/api-keys')
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
          const created = await api<{ apiKey: ApiKey; secret: string }>('POST', '/me/api-keys', {
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
