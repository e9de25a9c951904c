/**
 * Changing my email address: the account page's card asks for the new address and, behind a
 * confirmation and a step-up, POST /me/email (the platform mails a link to the new address and a
 * notice to the current one; the address stays until the link is opened). The link's page
 * (/account/email#token=…, the token read from the fragment and dropped from the address bar)
 * confirms it with POST /me/email/confirm while I am signed in; the code can be typed too.
 */
import { useEffect, useRef, useState } from 'react';
import { api, type UserView } from '../../api';
import { Alert, Button, Card, ConfirmDialog, Field, Link } from '../../kit';
import { useAction } from '../ui';
import { MailedCodeForm, tokenFromFragment } from './Account';

export function ChangeEmail(props: { email: string }) {
  const [newEmail, setNewEmail] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [sentTo, setSentTo] = useState<string | null>(null);
  return (
    <Card title="Email address">
      <p>
        Your address is <strong data-testid="email">{props.email}</strong>.
      </p>
      {sentTo && (
        <Alert kind="info">
          We sent a link to {sentTo}: open it while signed in to confirm. Until then your address stays {props.email}.
        </Alert>
      )}
      <form
        aria-label="Change my email address"
        className="stack"
        onSubmit={(event) => {
          event.preventDefault();
          setSentTo(null);
          setConfirming(true);
        }}
      >
        <Field label="New email address" type="email" autoComplete="email" value={newEmail} onChange={setNewEmail} required />
        <Button type="submit" disabled={!newEmail.trim()}>
          Change email…
        </Button>
      </form>
      <ConfirmDialog
        title={`Use ${newEmail.trim()} for your account?`}
        open={confirming}
        onClose={() => setConfirming(false)}
        confirmLabel="Send the link"
        variant="primary"
        stepUp
        onConfirm={async () => {
          await api('POST', '/me/email', { newEmail: newEmail.trim() });
          setSentTo(newEmail.trim());
          setNewEmail('');
          setConfirming(false);
        }}
      >
        <p>We mail a link to the new address, and a notice to {props.email}. The change happens when you open the link.</p>
      </ConfirmDialog>
    </Card>
  );
}

/** The mailed link's page: confirms the new address at once, or with the code typed from the email. */
export function ConfirmEmailChange(props: { onChanged: (user: UserView) => void }) {
  const token = useRef(tokenFromFragment());
  const [manual, setManual] = useState('');
  const [changedTo, setChangedTo] = useState<string | null>(null);
  const { busy, error, run, submit } = useAction();
  const confirm = (value: string) =>
    run(async () => {
      const user = await api<UserView>('POST', '/me/email/confirm', { token: value });
      setChangedTo(user.email);
      props.onChanged(user);
    });
  useEffect(() => {
    if (token.current) void confirm(token.current);
  }, []);
  return (
    <>
      <h1>Confirm your new email address</h1>
      {changedTo ? (
        <>
          <Alert kind="info">Your email address is now {changedTo}.</Alert>
          <p>
            <Link to="/account">Back to my account</Link>
          </p>
        </>
      ) : (
        <MailedCodeForm busy={busy} error={error} onConfirm={submit(async () => confirm(manual.trim()))} code={manual} onCode={setManual} />
      )}
    </>
  );
}
