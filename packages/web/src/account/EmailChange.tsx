/**
 * Changing my email address, shared by the console and the companion app. The account page's
 * card asks for the new address and, behind a confirmation and a step-up, POST /me/email (the
 * platform mails a link to the new address and a notice to the current one; the address stays
 * until the link is opened). The link's page (/account/email#token=… of the face the platform
 * names for the account: the console's for an operator, the app's for a consumer; the token read
 * from the fragment and dropped from the address bar) confirms it with POST /me/email/confirm
 * while I am signed in: signed out, each face asks to sign in first and comes back to it. The code
 * can be typed too.
 */
import { useEffect, useRef, useState } from 'react';
import { api, type UserView } from '../api';
import { Alert, Button, Card, ConfirmDialog, Field, Link, messageOf } from '../kit';
import { MailedCodeForm, tokenFromFragment } from './mailed-token';

/** What each face's sign-in page says when the link was opened signed out. */
export const SIGN_IN_TO_CONFIRM = 'Sign in to confirm your new email address.';

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

/**
 * The mailed link's page: confirms the new address at once, or with the code typed from the email.
 * `accountPath` is the face's account page, linked once the address is changed.
 */
export function ConfirmEmailChange(props: { accountPath: string; onChanged: (user: UserView) => void }) {
  const token = useRef(tokenFromFragment());
  const [manual, setManual] = useState('');
  const [changedTo, setChangedTo] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string } | null>(null);
  const confirm = async (value: string) => {
    setBusy(true);
    setError(null);
    try {
      const user = await api<UserView>('POST', '/me/email/confirm', { token: value });
      setChangedTo(user.email);
      props.onChanged(user);
    } catch (caught) {
      setError({ message: messageOf(caught) });
    } finally {
      setBusy(false);
    }
  };
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
            <Link to={props.accountPath}>Back to my account</Link>
          </p>
        </>
      ) : (
        <MailedCodeForm
          busy={busy}
          error={error}
          onConfirm={(event) => {
            event.preventDefault();
            void confirm(manual.trim());
          }}
          code={manual}
          onCode={setManual}
        />
      )}
    </>
  );
}
