/**
 * The companion app's entry (served at /app/): asks the API who is signed in (and the CSRF token
 * of the cookie session), then shows the signed-out pages (sign in, sign up, confirm the address,
 * reset the password) or the consumer's pages (my devices, add a device, one device, my account). An operator's
 * session is not a consumer's: the app says so and offers to sign out. The mailed email-change link's
 * page (/account/email) serves both: signed out, it asks to sign in first and then confirms. So does
 * the hosted authorization page (/authorize?<OAuth request>) an app's sign-in lands on.
 */
import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError, setCsrfToken, type SessionAnswer, type UserView } from '../api';
import { Alert, Button, Link } from '../kit';
import { navigate, usePath } from '../router';
import { ResetPassword, SignIn, SignUp, VerifyEmail } from './pages/Account';
import { AddDevice, takeLabelCode } from './pages/AddDevice';
import { Authorize, AuthorizeRefused, AuthorizeSignIn } from './pages/Authorize';
import { ConfirmEmailChange, SIGN_IN_TO_CONFIRM } from '../account/EmailChange';
import { DeviceView } from './pages/DeviceView';
import { MyAccount } from './pages/MyAccount';
import { MyDevices } from './pages/MyDevices';
import '../styles.css';
import './app.css';

type SessionState =
  { kind: 'loading' } | { kind: 'signed-out' } | { kind: 'signed-in'; user: UserView } | { kind: 'failed'; message: string };

function App() {
  const [session, setSession] = useState<SessionState>({ kind: 'loading' });
  const path = usePath();
  const route = path.split('?')[0]!;

  const load = useCallback(async () => {
    try {
      const answer = await api<SessionAnswer>('GET', '/auth/session');
      setCsrfToken(answer.csrfToken ?? null);
      setSession(answer.scope === 'full' ? { kind: 'signed-in', user: answer.user } : { kind: 'signed-out' });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setSession({ kind: 'signed-out' });
      else setSession({ kind: 'failed', message: (error as Error).message });
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const signOut = async () => {
    try {
      await api('POST', '/auth/logout');
    } finally {
      setCsrfToken(null);
      setSession({ kind: 'signed-out' });
      navigate('/sign-in');
    }
  };

  if (session.kind === 'loading') return <p className="loading">Loading…</p>;
  if (session.kind === 'failed') return <Alert>{session.message}</Alert>;
  if (route === '/authorize') {
    const query = path.slice(route.length);
    if (session.kind === 'signed-out')
      return <AuthorizeSignIn query={query} onSignedIn={(user) => setSession({ kind: 'signed-in', user })} />;
    if (session.user.kind === 'operator') return <AuthorizeRefused user={session.user} />;
    return <Authorize query={query} user={session.user} />;
  }
  if (session.kind === 'signed-out' || route === '/verify-email' || route === '/reset-password') {
    if (route === '/sign-up') return <SignUp />;
    if (route === '/verify-email') return <VerifyEmail />;
    if (route === '/reset-password') return <ResetPassword />;
    return (
      <SignIn
        reason={route === '/account/email' ? SIGN_IN_TO_CONFIRM : undefined}
        onSignedIn={(user) => {
          setSession({ kind: 'signed-in', user });
          // The email-change link's page comes back with its #token once signed in; a box label's, with its product.
          navigate(route === '/account/email' ? `/account/email${window.location.hash}` : route === '/add' ? path : '/');
        }}
      />
    );
  }

  const detail = /^\/devices\/([^/]+)$/.exec(route);
  const page =
    route === '/account/email' ? (
      <ConfirmEmailChange
        accountPath="/account"
        onChanged={(user) => setSession({ kind: 'signed-in', user: { ...session.user, email: user.email } })}
      />
    ) : session.user.kind === 'operator' ? (
      <Alert>
        This app is for customers: you are signed in as an operator ({session.user.email}). Sign out, then sign in with your customer
        account.
      </Alert>
    ) : detail ? (
      <DeviceView key={detail[1]} id={decodeURIComponent(detail[1]!)} />
    ) : route === '/add' ? (
      <AddDevice />
    ) : route === '/account' ? (
      <MyAccount
        email={session.user.email}
        onDeleted={() => {
          setSession({ kind: 'signed-out' });
          navigate('/sign-in');
        }}
      />
    ) : (
      <MyDevices />
    );
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar app-bar">
        <nav aria-label="Main">
          <Link to="/" current={route === '/' || route.startsWith('/devices')}>
            My devices
          </Link>
          <Link to="/add" current={route === '/add'}>
            Add a device
          </Link>
          <Link to="/account" current={route === '/account'}>
            Account
          </Link>
        </nav>
        <Button variant="secondary" onClick={() => void signOut()}>
          Sign out
        </Button>
      </header>
      <main id="main" className="app-main">
        {page}
      </main>
    </>
  );
}

// A box label's link carries its claim code in the fragment: taken before anything renders, off the address bar at once.
takeLabelCode();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
