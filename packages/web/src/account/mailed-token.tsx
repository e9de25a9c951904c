/**
 * Mailed links carry their one-time token in the URL fragment (#token=…), which no server and no
 * Referer sees: the page reads it once and drops it from the address bar. When the link is not
 * opened in this browser, the code printed in the mail can be typed instead. Shared by the
 * console and the companion app.
 */
import type { FormEvent } from 'react';
import { Alert, Button, Field } from '../kit';

/** The code of a mailed link typed by hand, for when the link is not opened in this browser. */
export function MailedCodeForm(props: {
  busy: boolean;
  error: { message: string } | null;
  code: string;
  onCode: (code: string) => void;
  onConfirm: (event: FormEvent) => void;
}) {
  return (
    <form onSubmit={props.onConfirm} className="stack">
      {props.busy && <p role="status">Confirming…</p>}
      {props.error && <Alert>{props.error.message}</Alert>}
      <Field label="Code from the email" value={props.code} onChange={props.onCode} required hint="Or open the link in the email" />
      <Button type="submit" disabled={props.busy}>
        Confirm
      </Button>
    </form>
  );
}

/** The token of a mailed link (`#token=…`), dropped from the address bar once read. */
export function tokenFromFragment(): string {
  const token = new URLSearchParams(window.location.hash.slice(1)).get('token') ?? '';
  if (token) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token;
}
