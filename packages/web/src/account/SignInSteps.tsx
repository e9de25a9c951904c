/**
 * The passkey's places on the sign-in pages of both faces: "Use a passkey" (alone, passwordless,
 * or at the second step), and the second step itself, which offers the factors the platform
 * names for the account (the code from an authenticator app or a recovery code, a passkey).
 */
import { useState } from 'react';
import type { MfaFactor } from '../api';
import { Button, Field } from '../kit';
import { passkeysSupported } from './passkey';

/** "Use a passkey", set apart from the form above it; nothing where the browser has no WebAuthn. */
export function UsePasskey(props: { lead?: string; primary?: boolean; disabled: boolean; onClick: () => void }) {
  if (!passkeysSupported()) return null;
  return (
    <p className="or">
      {props.lead && `${props.lead} `}
      <Button variant={props.primary ? 'primary' : 'secondary'} disabled={props.disabled} onClick={props.onClick}>
        Use a passkey
      </Button>
    </p>
  );
}

/** The second step of a password sign-in, in the face's own words. */
export function SecondFactor(props: {
  factors: MfaFactor[];
  busy: boolean;
  words: { label: string; hint: string; submit: string };
  onCode: (code: string) => void;
  onPasskey: () => void;
}) {
  const [code, setCode] = useState('');
  const totp = props.factors.includes('totp');
  return (
    <>
      {totp && (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            props.onCode(code);
          }}
        >
          <Field
            label={props.words.label}
            value={code}
            onChange={setCode}
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            hint={props.words.hint}
          />
          <Button type="submit" disabled={props.busy}>
            {props.words.submit}
          </Button>
        </form>
      )}
      {props.factors.includes('passkey') && <UsePasskey primary={!totp} disabled={props.busy} onClick={props.onPasskey} />}
    </>
  );
}
