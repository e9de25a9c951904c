/**
 * The consumer's account page (signed in): my email address (changed through a mailed link,
 * src/account/EmailChange.tsx), two-step verification with an authenticator app (the
 * console's enrolment, QR code and recovery codes), passkeys, the sessions signed in on other
 * phones and computers, the password, a download of everything the platform holds about me
 * (GET /me/export, a JSON file), and deleting the account (behind a confirmation and a step-up;
 * the platform ends every session with it). The cards are the console's (src/account/).
 */
import { useState } from 'react';
import { api, setCsrfToken } from '../../api';
import { ChangePassword } from '../../account/Password';
import { Passkeys } from '../../account/Passkeys';
import { Sessions } from '../../account/Sessions';
import { TwoFactor } from '../../account/TwoFactor';
import { Button, Card, ConfirmDialog } from '../../kit';
import { ChangeEmail } from '../../account/EmailChange';

export function MyAccount(props: { email: string; onDeleted: () => void }) {
  const [deleting, setDeleting] = useState(false);
  return (
    <>
      <h1>My account</h1>
      <ChangeEmail email={props.email} />
      <TwoFactor title="Two-step verification" />
      <Passkeys />
      <Sessions />
      <ChangePassword hint="At least 8 characters; a long phrase is best" />
      <Card title="My data">
        <p>Download everything we hold about you (account, sessions, devices, activity) as a JSON file.</p>
        <a className="btn btn-secondary" href="/api/v1/me/export" download="my-account.json">
          Download my data
        </a>
      </Card>
      <Card title="Delete my account">
        <p>
          The devices you own are released and their readings erased, what you share ends, and you are signed out everywhere. This cannot be
          undone.
        </p>
        <Button variant="danger" onClick={() => setDeleting(true)}>
          Delete my account…
        </Button>
      </Card>
      <ConfirmDialog
        title="Delete your account?"
        open={deleting}
        onClose={() => setDeleting(false)}
        confirmLabel="Delete my account"
        stepUp
        onConfirm={async () => {
          await api('DELETE', '/me');
          setCsrfToken(null);
          setDeleting(false);
          props.onDeleted();
        }}
      >
        <p>Everything in your account goes, and you are signed out.</p>
      </ConfirmDialog>
    </>
  );
}
