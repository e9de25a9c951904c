/**
 * Sign-in: organization, email and password (cookie mode), then whatever the API asks next:
 * a new password on first sign-in, TOTP enrolment when the role needs MFA (the secret and
 * otpauth URI, then a first code; recovery codes shown once), or the TOTP code.
 */
import { useState, type FormEvent } from 'react';
import { api, ApiError, setCsrfToken, type SignInAnswer, type SignInStatus, type User } from '../api';
import { Alert, Button, Field } from '../kit';
import { Enrolment } from './Security';

type Step = SignInStatus | 'credentials' | 'recovery-codes';

export function SignIn(props: { onSignedIn: (user: User) => void }) {
  const [step, setStep] = useState<Step>('credentials');
  const [organization, setOrganization] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [code, setCode] = useState('');
  const [enrolment, setEnrolment] = useState<{ secret: string; otpauthUri: string } | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[]>([]);
  const [user, setUser] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const advance = async (answer: SignInAnswer) => {
    if (answer.csrfToken) setCsrfToken(answer.csrfToken);
    setUser(answer.user);
    setCode('');
    if (answer.status === 'ok') return props.onSignedIn(answer.user);
    if (answer.status === 'mfa_enrollment_required') setEnrolment(await api('POST', '/me/mfa/totp'));
    setStep(answer.status);
  };

  const run = (action: () => Promise<void>) => async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await action();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'The platform could not be reached; try again');
    } finally {
      setBusy(false);
    }
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
  const verify = run(async () => advance(await api('POST', '/auth/mfa', { code })));

  return (
    <main id="main" className="signin">
      <h1>Bulwark console</h1>
      {error && <Alert>{error}</Alert>}
      {step === 'credentials' && (
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
      {step === 'recovery-codes' && user && (
        <section aria-label="Recovery codes">
          <h2>Recovery codes</h2>
          <p>Keep these somewhere safe: each signs you in once if you lose your authenticator. They are shown only now.</p>
          <ul className="codes">
            {recoveryCodes.map((recovery) => (
              <li key={recovery}>
                <code>{recovery}</code>
              </li>
            ))}
          </ul>
          <Button onClick={() => props.onSignedIn(user)}>I have saved them: continue</Button>
        </section>
      )}
      {step === 'mfa_required' && (
        <form onSubmit={verify} aria-label="Two-factor authentication">
          <h2>Two-factor authentication</h2>
          <Field
            label="Authentication code"
            value={code}
            onChange={setCode}
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            hint="From your authenticator app, or a recovery code"
          />
          <Button type="submit" disabled={busy}>
            Verify
          </Button>
        </form>
      )}
    </main>
  );
}
