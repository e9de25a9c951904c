/**
 * The consumer's account pages while signed out: sign in (organization, email, password in
 * cookie mode, then the TOTP code or a passkey when the account has a second factor; or a
 * passkey alone, the console's ceremony from src/account/passkey.ts), sign up, confirm the email address
 * from the mailed link, and reset a forgotten password. Mailed links carry the token in the URL
 * fragment (#token=…), which no server and no Referer sees; the page reads it and then drops it
 * from the address bar.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { api, setCsrfToken, type MfaFactor, type SignInAnswer, type UserView } from '../../api';
import { passkeyAsSecondFactor, signInWithPasskey } from '../../account/passkey';
import { MailedCodeForm, tokenFromFragment } from '../../account/mailed-token';
import { SecondFactor, UsePasskey } from '../../account/SignInSteps';
import { Alert, Button, Field, Link } from '../../kit';
import { useAction } from '../ui';

/** The brand's organization: from `?org=` in the link the brand gives its customers, kept in memory only. */
let organizationHint = new URLSearchParams(window.location.search).get('org') ?? '';

/** The brand a page already knows (the hosted authorization page: the app's organization), for the forms' Brand field. */
export function rememberOrganization(slug: string): void {
  organizationHint = slug;
}

function useOrganization() {
  const [organization, setOrganization] = useState(organizationHint);
  return [
    organization,
    (value: string) => {
      organizationHint = value;
      setOrganization(value);
    },
  ] as const;
}

export function Page(props: { title: string; children: ReactNode }) {
  return (
    <main id="main" className="signin">
      <p className="brand-line">My devices</p>
      <h1>{props.title}</h1>
      {props.children}
    </main>
  );
}

/** `reason`: why the page asks to sign in (a mailed link's page waits behind it); `title`: the page's heading. */
export function SignIn(props: { onSignedIn: (user: UserView) => void; reason?: string; title?: string }) {
  const [organization, setOrganization] = useOrganization();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [mfa, setMfa] = useState<MfaFactor[] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, submit, run } = useAction();

  const advance = (answer: SignInAnswer) => {
    if (answer.csrfToken) setCsrfToken(answer.csrfToken);
    if (answer.status === 'ok') return props.onSignedIn(answer.user);
    if (answer.status === 'mfa_required') return setMfa(answer.mfaFactors ?? ['totp']);
    throw new Error(`unexpected sign-in step ${answer.status}`);
  };

  const withPasskey = (ceremony: () => Promise<SignInAnswer>) => () => void run(async () => advance(await ceremony()));

  if (mfa)
    return (
      <Page title="Two-step check">
        {error && <Alert>{error.message}</Alert>}
        <SecondFactor
          factors={mfa}
          busy={busy}
          words={{ label: 'Code from your authenticator app', hint: 'Six digits, or one of your recovery codes', submit: 'Continue' }}
          onCode={(code) => void run(async () => advance(await api('POST', '/auth/mfa', { code })))}
          onPasskey={withPasskey(passkeyAsSecondFactor)}
        />
      </Page>
    );
  return (
    <Page title={props.title ?? 'Sign in'}>
      <form onSubmit={submit(async () => advance(await api('POST', '/auth/login', { organization, email, password, mode: 'cookie' })))}>
        {props.reason && <Alert kind="info">{props.reason}</Alert>}
        {error && <Alert>{error.message}</Alert>}
        {notice && <Alert kind="info">{notice}</Alert>}
        <Field label="Brand" value={organization} onChange={setOrganization} required hint="The name from your product's box or link" />
        <Field label="Email" type="email" value={email} onChange={setEmail} autoComplete="username" required />
        <Field label="Password" type="password" value={password} onChange={setPassword} autoComplete="current-password" required />
        <div className="actions">
          <Button type="submit" disabled={busy}>
            Sign in
          </Button>
          {error?.code === 'auth.email_not_verified' && (
            <Button
              variant="secondary"
              onClick={() =>
                void run(async () => {
                  await api('POST', '/auth/verify-email/resend', { organization, email });
                  setNotice('We sent a new link to confirm your address: check your email.');
                })
              }
            >
              Send the link again
            </Button>
          )}
        </div>
      </form>
      <UsePasskey lead="Or without a password:" disabled={busy} onClick={withPasskey(signInWithPasskey)} />
      <p>
        New here? <Link to="/sign-up">Create an account</Link>
      </p>
      <p>
        <Link to="/reset-password">Forgot your password?</Link>
      </p>
    </Page>
  );
}

export function SignUp() {
  const [organization, setOrganization] = useOrganization();
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [sent, setSent] = useState<string | null>(null);
  const { busy, error, submit, setError } = useAction();
  if (sent)
    return (
      <Page title="Check your email">
        <Alert kind="info">{sent}</Alert>
        <p>
          <Link to="/sign-in">Sign in</Link> once you have confirmed your address.
        </p>
      </Page>
    );
  return (
    <Page title="Create an account">
      <form
        onSubmit={submit(async () => {
          if (password !== repeat) return setError({ message: 'The two passwords differ.', code: 'form.mismatch' });
          const answer = await api<{ message: string }>('POST', '/auth/signup', { organization, name, email, password });
          setSent(answer.message);
        })}
      >
        {error && <Alert>{error.message}</Alert>}
        <Field label="Brand" value={organization} onChange={setOrganization} required hint="The name from your product's box or link" />
        <Field label="Your name" value={name} onChange={setName} autoComplete="name" required />
        <Field label="Email" type="email" value={email} onChange={setEmail} autoComplete="email" required />
        <Field
          label="Password"
          type="password"
          value={password}
          onChange={setPassword}
          autoComplete="new-password"
          required
          hint="At least 8 characters; a long phrase is best"
        />
        <Field label="Repeat the password" type="password" value={repeat} onChange={setRepeat} autoComplete="new-password" required />
        <Button type="submit" disabled={busy}>
          Create account
        </Button>
      </form>
      <p>
        Have an account? <Link to="/sign-in">Sign in</Link>
      </p>
    </Page>
  );
}

export function VerifyEmail() {
  const token = useRef(tokenFromFragment());
  const [manual, setManual] = useState('');
  const [done, setDone] = useState(false);
  const { busy, error, run, submit } = useAction();
  const verify = (value: string) =>
    run(async () => {
      await api('POST', '/auth/verify-email', { token: value });
      setDone(true);
    });
  useEffect(() => {
    if (token.current) void verify(token.current);
  }, []);
  return (
    <Page title="Confirm your email address">
      {done ? (
        <>
          <Alert kind="info">Your address is confirmed.</Alert>
          <p>
            <Link to="/sign-in">Sign in</Link>
          </p>
        </>
      ) : (
        <MailedCodeForm busy={busy} error={error} onConfirm={submit(async () => verify(manual))} code={manual} onCode={setManual} />
      )}
    </Page>
  );
}

export function ResetPassword() {
  const token = useRef(tokenFromFragment());
  const [organization, setOrganization] = useOrganization();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, submit } = useAction();
  if (notice)
    return (
      <Page title="Reset your password">
        <Alert kind="info">{notice}</Alert>
        <p>
          <Link to="/sign-in">Sign in</Link>
        </p>
      </Page>
    );
  if (token.current)
    return (
      <Page title="Choose a new password">
        <form
          onSubmit={submit(async () => {
            await api('POST', '/auth/password-reset/complete', { token: token.current, newPassword: password });
            setNotice('Your password is changed, and every device you were signed in on is signed out.');
          })}
        >
          {error && <Alert>{error.message}</Alert>}
          <Field label="New password" type="password" value={password} onChange={setPassword} autoComplete="new-password" required />
          <Button type="submit" disabled={busy}>
            Set the password
          </Button>
        </form>
      </Page>
    );
  return (
    <Page title="Reset your password">
      <form
        onSubmit={submit(async () => {
          const answer = await api<{ message: string }>('POST', '/auth/password-reset/request', { organization, email });
          setNotice(answer.message);
        })}
      >
        {error && <Alert>{error.message}</Alert>}
        <Field label="Brand" value={organization} onChange={setOrganization} required />
        <Field label="Email" type="email" value={email} onChange={setEmail} autoComplete="email" required />
        <Button type="submit" disabled={busy}>
          Email me a link
        </Button>
      </form>
      <p>
        <Link to="/sign-in">Back to sign in</Link>
      </p>
    </Page>
  );
}
