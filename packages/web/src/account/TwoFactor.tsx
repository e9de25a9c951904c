/**
 * The authenticator-app factor (TOTP), shared by the console's security page, its first sign-in
 * and the companion app's account page: the enrolment step (QR code of the otpauth URI, the key
 * as text, the first code), the recovery codes shown once, and the card that starts an enrolment,
 * or replaces the recovery codes or turns the authenticator off (DELETE /me/mfa, audited; refused
 * where the role must use MFA and holds no passkey), each behind a confirmation and a step-up.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type SessionAnswer, type TotpEnrolment, type UserView } from '../api';
import { Alert, Button, Card, ConfirmDialog, Field, messageOf, QrCode } from '../kit';

export function RecoveryCodes(props: { codes: string[] }) {
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

/** The enrolment step: QR code, the key as text, the first code. */
export function Enrolment(props: {
  enrolment: TotpEnrolment;
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

/** The card: set up an authenticator (no factor yet), or replace the recovery codes. */
export function TwoFactor(props: { title: string }) {
  const [user, setUser] = useState<UserView | null>(null);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState<string[]>([]);
  const [replacing, setReplacing] = useState(false);
  const [disabling, setDisabling] = useState(false);
  const [disabled, setDisabled] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setUser((await api<SessionAnswer>('GET', '/auth/session')).user);
  }, []);
  useEffect(() => {
    load().catch((caught: unknown) => setError(messageOf(caught)));
  }, [load]);

  const begin = async () => {
    setError(null);
    setDisabled(false);
    try {
      setEnrolment(await api<TotpEnrolment>('POST', '/me/mfa/totp'));
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
    <Card title={props.title}>
      {error && <Alert>{error}</Alert>}
      {disabled && <Alert kind="info">The authenticator app is turned off: its codes and your recovery codes no longer work.</Alert>}
      {user && !user.mfaEnabled && !enrolment && (
        <>
          <p data-testid="mfa-off">No authenticator app is set up.</p>
          <Button onClick={() => void begin()}>Set up an authenticator</Button>
        </>
      )}
      {enrolment && <Enrolment enrolment={enrolment} code={code} onCode={setCode} onSubmit={confirm} />}
      {user?.mfaEnabled && (
        <>
          <p data-testid="mfa-state">An authenticator app is set up: sign-in and dangerous actions ask for its code.</p>
          <div className="row-actions">
            <Button variant="secondary" onClick={() => setReplacing(true)}>
              Replace recovery codes…
            </Button>
            <Button variant="danger" onClick={() => setDisabling(true)}>
              Turn off…
            </Button>
          </div>
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
      <ConfirmDialog
        title="Turn off the authenticator app?"
        open={disabling}
        onClose={() => setDisabling(false)}
        confirmLabel="Turn off"
        stepUp
        onConfirm={async () => {
          await api('DELETE', '/me/mfa');
          setDisabling(false);
          setCodes([]);
          setDisabled(true);
          await load();
        }}
      >
        <p>Signing in then needs only your password (or a passkey); the app's codes and your recovery codes stop working.</p>
      </ConfirmDialog>
    </Card>
  );
}
