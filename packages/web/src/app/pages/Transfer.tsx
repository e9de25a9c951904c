/**
 * Transfer: the owner offers the device to another consumer by email (`POST my/devices/:id/transfer`),
 * behind a confirmation and a step-up (the authenticator code, the password, or a passkey) like the
 * app's other dangerous actions. The offer waits for the other person's accept (every share then
 * ends and the device erases the owner's settings); until then it shows in the sharing list and can
 * be cancelled there. Only the owner may: the platform refuses anyone else and the card says why.
 */
import { useState } from 'react';
import { Alert, Button, Card, ConfirmDialog, Field } from '../../kit';
import { my } from '../api';
import { errorMessage } from '../ui';

export function Transfer(props: { id: string }) {
  const [email, setEmail] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <Card title="Give it to someone">
      {error && <Alert>{error}</Alert>}
      {notice && <Alert kind="info">{notice}</Alert>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setNotice(null);
          setError(null);
          setConfirming(true);
        }}
      >
        <Field label="New owner (email)" type="email" value={email} onChange={setEmail} required name="new-owner" autoComplete="off" />
        <Button type="submit" variant="danger">
          Transfer ownership
        </Button>
      </form>
      <ConfirmDialog
        title="Transfer ownership?"
        open={confirming}
        onClose={() => setConfirming(false)}
        confirmLabel="Transfer"
        stepUp
        onConfirm={async () => {
          // The step-up passed; the platform's refusal (not the owner, unknown address…) is shown on the card.
          setConfirming(false);
          try {
            await my.transfer(props.id, email.trim());
          } catch (caught) {
            setError(errorMessage(caught));
            return;
          }
          setNotice(`Offer sent to ${email.trim()}. The device is theirs once they accept; until then it stays yours.`);
          setEmail('');
        }}
      >
        <p>
          {email.trim()} becomes its owner once they accept. Then everyone it is shared with loses access, you too, and the device erases
          your settings.
        </p>
      </ConfirmDialog>
    </Card>
  );
}
