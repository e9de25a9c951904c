/**
 * Change my password (the current one, the new one twice), shared by the console and the
 * companion app. The platform ends my other sessions and answers with a new one for this
 * browser, whose CSRF token replaces the old one.
 */
import { useState, type FormEvent } from 'react';
import { api, setCsrfToken, type SignInAnswer } from '../api';
import { Alert, Button, Card, Field, messageOf } from '../kit';

export function ChangePassword(props: { hint: string }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setDone(false);
    if (next !== repeat) return setError('The two new passwords differ');
    setBusy(true);
    try {
      const answer = await api<SignInAnswer>('POST', '/me/password', { currentPassword: current, newPassword: next });
      if (answer.csrfToken) setCsrfToken(answer.csrfToken);
      setCurrent('');
      setNext('');
      setRepeat('');
      setDone(true);
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Password">
      <form onSubmit={submit} aria-label="Change my password" className="stack">
        {error && <Alert>{error}</Alert>}
        {done && <Alert kind="info">Your password is changed; your other sessions are signed out.</Alert>}
        <Field label="Current password" type="password" value={current} onChange={setCurrent} autoComplete="current-password" required />
        <Field
          label="New password"
          type="password"
          value={next}
          onChange={setNext}
          autoComplete="new-password"
          required
          hint={props.hint}
        />
        <Field label="Repeat the new password" type="password" value={repeat} onChange={setRepeat} autoComplete="new-password" required />
        <Button type="submit" disabled={busy}>
          Change password
        </Button>
      </form>
    </Card>
  );
}
