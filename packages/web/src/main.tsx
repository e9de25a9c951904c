/**
 * The console's entry: asks the API who is signed in (and the CSRF token of a cookie session),
 * then shows the sign-in page or the signed-in layout with the page the path names.
 */
import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError, setCsrfToken, type SessionAnswer, type UserView } from './api';
import { Alert, Button, Link } from './kit';
import { navigate, usePath } from './router';
import { SignIn } from './pages/SignIn';
import { Fleet } from './pages/Fleet';
import { Devices } from './pages/Devices';
import { DeviceDetail } from './pages/DeviceDetail';
import { Security } from './pages/Security';
import { Audit } from './pages/Audit';
import { Products } from './pages/Products';
import { RolloutDetail, Rollouts } from './pages/Rollouts';
import { Users } from './pages/Users';
import { Findings } from './pages/Findings';
import { ConfirmEmailChange, SIGN_IN_TO_CONFIRM } from './account/EmailChange';
import './styles.css';

type SessionState =
  { kind: 'loading' } | { kind: 'signed-out' } | { kind: 'signed-in'; user: UserView } | { kind: 'failed'; message: string };

/** The page a path below /console names; the fleet overview for anything else. */
function pageFor(route: string, user: UserView) {
  const id = (pattern: RegExp) => {
    const match = pattern.exec(route);
    return match ? decodeURIComponent(match[1]!) : null;
  };
  const device = id(/^\/devices\/([^/]+)$/);
  if (device) return <DeviceDetail id={device} />;
  const rollout = id(/^\/rollouts\/([^/]+)$/);
  if (rollout) return <RolloutDetail id={rollout} />;
  if (route === '/devices') return <Devices />;
  if (route === '/rollouts') return <Rollouts />;
  if (route === '/audit') return <Audit />;
  if (route === '/security') return <Security user={user} />;
  if (route === '/users') return <Users />;
  if (route === '/findings') return <Findings />;
  if (route === '/products') return <Products user={user} />;
  return <Fleet />;
}

function App() {
  const [session, setSession] = useState<SessionState>({ kind: 'loading' });
  const path = usePath();

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
  if (session.kind === 'signed-out')
    return (
      <SignIn
        reason={path.split('?')[0] === '/account/email' ? SIGN_IN_TO_CONFIRM : undefined}
        onSignedIn={(user) => {
          setSession({ kind: 'signed-in', user });
          if (path.startsWith('/sign-in')) navigate('/');
        }}
      />
    );

  const route = path.split('?')[0]!;
  const user = session.user;
  // The mailed email-change link's page (the platform sends an operator's here); signed out, the
  // sign-in page above comes first and this path, with its #token, stays for after it.
  const page =
    route === '/account/email' ? (
      <ConfirmEmailChange
        accountPath="/security"
        onChanged={(changed) => setSession({ kind: 'signed-in', user: { ...user, email: changed.email } })}
      />
    ) : (
      pageFor(route, user)
    );
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Bulwark</span>
        <nav aria-label="Main">
          <Link to="/" current={route === '/' || route === '/sign-in'}>
            Fleet
          </Link>
          <Link to="/devices" current={route.startsWith('/devices')}>
            Devices
          </Link>
          <Link to="/products" current={route === '/products'}>
            Products
          </Link>
          <Link to="/rollouts" current={route.startsWith('/rollouts')}>
            Rollouts
          </Link>
          <Link to="/findings" current={route === '/findings'}>
            Findings
          </Link>
          <Link to="/users" current={route === '/users'}>
            Users
          </Link>
          <Link to="/audit" current={route === '/audit'}>
            Audit log
          </Link>
          <Link to="/security" current={route === '/security' || route === '/account/email'}>
            Security
          </Link>
        </nav>
        <span className="who">{session.user.email}</span>
        <Button variant="secondary" onClick={() => void signOut()}>
          Sign out
        </Button>
      </header>
      <main id="main">{page}</main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
