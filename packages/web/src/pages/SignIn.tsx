/**
 * Sign-in: organization, email and password (cookie mode), or a passkey alone (passwordless: it
 * proves both factors); then whatever the API asks next: a new password on first sign-in, TOTP
 * enrolment when the role needs MFA (the secret and otpauth URI, then a first code; recovery
 * codes shown once), a passkey when the organization's policy requires one for the role, or the
 * second factor (the TOTP code, or a passkey when the account has one).
 */
import { useState, type FormEvent } from 'react';
import {
  api,
  ApiError,
  setCsrfToken,
  type MfaFactor,
  type SignInAnswer,
  type SignInStatus,
  type TotpEnrolment,
  type UserView,
} from '../api';
import { passkeyAsSecondFactor, passkeysSupported, registerPasskey, signInWithPasskey } from '../account/passkey';
import { SecondFactor, UsePasskey } from '../account/SignInSteps';
import { Enrolment, RecoveryCodes } from '../account/TwoFactor';
import { Alert, Button, Field, messageOf } from '../kit';

type Step = SignInStatus | 'credentials' | 'recovery-codes';

/** `reason`: why the page asks to sign in (a mailed link's page waits behind it). */
export function SignIn(props: { onSignedIn: (user: UserView) => void; reason?: string }) {
  const [step, setStep] = useState<Step>('credentials');
  const [organization, setOrganization] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [code, setCode] = useState('');
  const [passkeyName, setPasskeyName] = useState('');
  const [factors, setFactors] = useState<MfaFactor[]>(['totp']);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[]>([]);
  const [user, setUser] = useState<UserView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const advance = async (answer: SignInAnswer) => {
    if (answer.csrfToken) setCsrfToken(answer.csrfToken);
    setUser(answer.user);
    setCode('');
    if (answer.status === 'ok') return props.onSignedIn(answer.user);
    if (answer.status === 'mfa_enrollment_required') setEnrolment(await api<TotpEnrolment>('POST', '/me/mfa/totp'));
    if (answer.status === 'mfa_required') setFactors(answer.mfaFactors ?? ['totp']);
    setStep(answer.status);
  };

  const attempt = async (action: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await action();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  const run = (action: () => Promise<void>) => (event: FormEvent) => {
    event.preventDefault();
    void attempt(action);
  };

  const signIn = run(async () => advance(await api('POST', '/auth/login', { organization, email, password, mode: 'cookie' })));
  const changePassword = run(async () => {
    if (newPassword !== repeat) throw new ApiError(400, 'form.mismatch', 'The two new passwords differ');
    await advance(await api('POST', '/me/password', { currentPassword: password, newPassword }));
    setPassword('');
  });
  const confirmEnrolment = run(async () => {
    const answer = await api<{ recoveryCodes: string[]; session?: SignInAnswer }>('POST', '/me/mfa/totp/confirm', { code });
    if (answer.session?.csrfToken) setCsrfToken(answer.session.csrfToken);
    setRecoveryCodes(answer.recoveryCodes);
    setStep('recovery-codes');
  });
  const createPasskey = run(async () => {
    const { session } = await registerPasskey(passkeyName.trim());
    if (session) await advance(session);
  });
  const withPasskey = (ceremony: () => Promise<SignInAnswer>) => () => void attempt(async () => advance(await ceremony()));

  return (
    <main id="main" className="signin">
      <h1>Bulwark console</h1>
      {props.reason && <Alert kind="info">{props.reason}</Alert>}
      {error && <Alert>{error}</Alert>}
      {step === 'credentials' && (
        <>
          <form onSubmit={signIn} aria-label="Sign in">
            <Field
              label="Organization"
              value={organization}
              onChange={setOrganization}
              autoComplete="organization"
              required
              name="organization"
            />
            <Field label="Email" type="email" value={email} onChange={setEmail} autoComplete="username" required name="email" />
            <Field
              label="Password"
              type="password"
              value={password}
              onChange={setPassword}
              autoComplete="current-password"
              required
              name="password"
            />
            <Button type="submit" disabled={busy}>
              Sign in
            </Button>
          </form>
          <UsePasskey lead="Or without a password:" disabled={busy} onClick={withPasskey(signInWithPasskey)} />
        </>
      )}
      {step === 'password_change_required' && (
        <form onSubmit={changePassword} aria-label="Choose a new password">
          <h2>Choose a new password</h2>
          <p>This is your first sign-in: replace the one-time password with your own.</p>
          <Field
            label="New password"
            type="password"
            value={newPassword}
            onChange={setNewPassword}
            autoComplete="new-password"
            required
            hint="At least 12 characters"
          />
          <Field label="Repeat the new password" type="password" value={repeat} onChange={setRepeat} autoComplete="new-password" required />
          <Button type="submit" disabled={busy}>
            Change password
          </Button>
        </form>
      )}
      {step === 'mfa_enrollment_required' && enrolment && (
        <>
          <h2>Set up two-factor authentication</h2>
          <p>Your role needs an authenticator app.</p>
          <Enrolment enrolment={enrolment} code={code} onCode={setCode} onSubmit={confirmEnrolment} busy={busy} />
        </>
      )}
      {step === 'passkey_enrollment_required' && (
        <form onSubmit={createPasskey} aria-label="Create a passkey">
          <h2>Create a passkey</h2>
          <p>Your organization requires a passkey for your role: create one now with this device's screen lock or a security key.</p>
          <Field label="Name for the new passkey" value={passkeyName} onChange={setPasskeyName} required hint="e.g. “Work laptop”" />
          <Button type="submit" disabled={busy || !passkeysSupported()}>
            Create passkey
          </Button>
        </form>
      )}
      {step === 'recovery-codes' && user && (
        <>
          <h2>Recovery codes</h2>
          <RecoveryCodes codes={recoveryCodes} />
          <Button onClick={() => props.onSignedIn(user)}>I have saved them: continue</Button>
        </>
      )}
      {step === 'mfa_required' && (
        <section aria-label="Two-factor authentication">
          <h2>Two-factor authentication</h2>
          <SecondFactor
            factors={factors}
            busy={busy}
            words={{ label: 'Authentication code', hint: 'From your authenticator app, or a recovery code', submit: 'Verify' }}
            onCode={(code) => void attempt(async () => advance(await api('POST', '/auth/mfa', { code })))}
            onPasskey={withPasskey(passkeyAsSecondFactor)}
          />
        </section>
      )}
    </main>
  );
}
