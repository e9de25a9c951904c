/**
 * The platform's hosted authorization page (`/app/authorize?<the OAuth request>`): where a browser
 * that navigated to `/oauth/authorize` lands when the server cannot answer at once (not signed in,
 * consent to ask, a request to explain). Signed out, it names the app and its brand and signs the
 * consumer in (the app's own sign-in steps: password, code, passkey); signed in, it asks the
 * authorization endpoint again as JSON and shows the consent (the app, the scopes in words, Allow or
 * Deny) or the plain error. The browser then goes only where the server answered (`location`):
 * never to a URL read from the query, which a stranger may have written.
 */
import { useEffect, useState } from 'react';
import { oauthApi, type UserView } from '../../api';
import { Alert, Button } from '../../kit';
import { errorMessage } from '../ui';
import { Page, SignIn, rememberOrganization } from './Account';

interface AppClient {
  clientId: string;
  name: string;
  firstParty: boolean;
  organization: { slug: string; name: string };
}

interface ConsentAsked {
  consent_required: true;
  client: { clientId: string; name: string };
  scopes: string[];
  request: Record<string, string>;
}

/** The scopes as docs/apps.md explains them, in a consumer's words. */
const SCOPE_WORDS: Record<string, string> = {
  account: 'See and change your account details',
  'devices:read': 'See your devices and what they report',
  'devices:control': 'Change your devices’ settings and send them commands',
  'devices:share': 'Share your devices with others, end shares and give devices away',
};

const BAD_REQUEST: Record<string, string> = {
  'app.client_invalid': 'This sign-in link names an app that is unknown or no longer allowed.',
  'app.redirect_uri_mismatch': 'This sign-in link would send you back somewhere the app did not register.',
};

function explain(caught: unknown): string {
  const known = BAD_REQUEST[(caught as { code?: string }).code ?? ''];
  return known ? `${known} Nothing was sent to the app. (${(caught as Error).message})` : errorMessage(caught);
}

/** The app and brand of the request in `query` (the page's own query string, `?client_id=…`). */
function useClient(query: string) {
  const [client, setClient] = useState<AppClient | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const params = new URLSearchParams(query);
    const clientId = params.get('client_id') ?? '';
    const redirectUri = params.get('redirect_uri');
    const check = redirectUri === null ? '' : `?${new URLSearchParams({ redirect_uri: redirectUri }).toString()}`;
    oauthApi<AppClient>('GET', `/clients/${encodeURIComponent(clientId)}${check}`).then(setClient, (caught: unknown) =>
      setError(explain(caught)),
    );
  }, [query]);
  return { client, error };
}

function LinkNotValid(props: { message: string }) {
  return (
    <Page title="This sign-in link does not work">
      <Alert>{props.message}</Alert>
      <p>Go back to the app and start signing in again.</p>
    </Page>
  );
}

/** Signed out: "Sign in to continue to <App>", the brand filled in. */
export function AuthorizeSignIn(props: { query: string; onSignedIn: (user: UserView) => void }) {
  const { client, error } = useClient(props.query);
  if (error) return <LinkNotValid message={error} />;
  if (!client) return <p className="loading">Loading…</p>;
  rememberOrganization(client.organization.slug);
  return (
    <SignIn
      title={`Sign in to continue to ${client.name}`}
      reason={`${client.name} asks to use your ${client.organization.name} account.`}
      onSignedIn={props.onSignedIn}
    />
  );
}

type Step = { kind: 'asking' } | { kind: 'consent'; asked: ConsentAsked } | { kind: 'leaving' } | { kind: 'failed'; message: string };

/** Signed in as a consumer: the server's answer to the request, the consent if it asks for one, then back to the app. */
export function Authorize(props: { query: string; user: UserView }) {
  const { client, error } = useClient(props.query);
  const [step, setStep] = useState<Step>({ kind: 'asking' });
  const [busy, setBusy] = useState(false);

  const leave = (location: string) => {
    setStep({ kind: 'leaving' });
    window.location.assign(location);
  };

  useEffect(() => {
    oauthApi<ConsentAsked | { location: string }>('GET', `/authorize${props.query}`).then(
      (answer) => ('location' in answer ? leave(answer.location) : setStep({ kind: 'consent', asked: answer })),
      (caught: unknown) => setStep({ kind: 'failed', message: explain(caught) }),
    );
  }, [props.query]);

  const decide = async (decision: 'allow' | 'deny', asked: ConsentAsked) => {
    setBusy(true);
    try {
      leave((await oauthApi<{ location: string }>('POST', '/authorize/consent', { ...asked.request, decision })).location);
    } catch (caught) {
      setStep({ kind: 'failed', message: explain(caught) });
    } finally {
      setBusy(false);
    }
  };

  if (step.kind === 'failed' || error) return <LinkNotValid message={step.kind === 'failed' ? step.message : error!} />;
  if (step.kind === 'leaving') return <p className="loading">Returning to the app…</p>;
  if (step.kind === 'asking' || !client) return <p className="loading">Loading…</p>;
  const { asked } = step;
  return (
    <Page title={`Allow ${client.name} to use your account?`}>
      <p>
        {client.name} asks to act for you ({props.user.email}) at {client.organization.name}. It will be able to:
      </p>
      <ul className="consent-scopes">
        {asked.scopes.map((scope) => (
          <li key={scope}>{SCOPE_WORDS[scope] ?? scope}</li>
        ))}
      </ul>
      <p>It never sees your password.</p>
      <div className="actions">
        <Button disabled={busy} onClick={() => void decide('allow', asked)}>
          Allow
        </Button>
        <Button variant="secondary" disabled={busy} onClick={() => void decide('deny', asked)}>
          Deny
        </Button>
      </div>
    </Page>
  );
}

/** An operator's session: an app's sign-in is for customers. */
export function AuthorizeRefused(props: { user: UserView }) {
  return (
    <Page title="Sign in with a customer account">
      <Alert>
        Apps act for customers: you are signed in as an operator ({props.user.email}), which cannot let an app in. Sign out, then open the
        app&apos;s sign-in again with your customer account.
      </Alert>
    </Page>
  );
}
